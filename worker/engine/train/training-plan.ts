// How much work a training run is, known before it starts: the step counts the loop will run
// (train-loop.ts uses the same two functions) and the token slots it will compute, i.e. the rows
// of each micro-batch times the longest of them (selectRows pads a micro-batch to its longest
// row), in the loop's own seeded row order.

import { batchOrder } from "../data/batch-order.js";

/** Optimizer steps in one epoch of `numRows` rows. */
export function stepsPerEpoch(numRows: number, batchSize: number): number {
  return Math.ceil(numRows / batchSize);
}

/** Steps between two validation samples when the caller does not choose (about ten per run). */
export function defaultValidEvery(totalSteps: number): number {
  return Math.max(1, Math.ceil(totalSteps / 10));
}

export interface TrainingPlanInput {
  /** real tokens of each training row */
  rowLengths: readonly number[];
  /** real tokens of each validation row (empty: no validation file) */
  validationRowLengths: readonly number[];
  batchSize: number;
  nEpochs: number;
  microBatchSize: number;
  seed: number;
}

export interface TrainingPlan {
  stepsPerEpoch: number;
  totalSteps: number;
  /** token slots of every forward + backward pass (padding included) */
  trainSlots: number;
  /** token slots of the forward-only validation passes: the samples and the final full pass */
  evalSlots: number;
  /** the widest micro-batch the run will compute (rows × longest row) */
  widestMicroBatch: { rows: number; seqLen: number };
}

function slotsOf(lengths: readonly number[], rows: readonly number[]): number {
  let longest = 0;
  for (const r of rows) longest = Math.max(longest, lengths[r]);
  return rows.length * longest;
}

export function planTraining(input: TrainingPlanInput): TrainingPlan {
  const { rowLengths, batchSize, microBatchSize } = input;
  const perEpoch = stepsPerEpoch(rowLengths.length, batchSize);
  const totalSteps = perEpoch * input.nEpochs;
  let trainSlots = 0;
  let widest = { rows: 0, seqLen: 0 };
  for (let epoch = 0; epoch < input.nEpochs; epoch++) {
    const order = batchOrder(rowLengths.length, epoch, input.seed);
    for (let step = 0; step < perEpoch; step++) {
      const stepRows = order.slice(step * batchSize, (step + 1) * batchSize);
      for (let at = 0; at < stepRows.length; at += microBatchSize) {
        const rows = stepRows.slice(at, at + microBatchSize);
        const slots = slotsOf(rowLengths, rows);
        trainSlots += slots;
        if (slots > widest.rows * widest.seqLen) widest = { rows: rows.length, seqLen: slots / rows.length };
      }
    }
  }
  const valid = input.validationRowLengths;
  let evalSlots = 0;
  if (valid.length > 0) {
    const sampleRows = Math.min(microBatchSize, valid.length);
    const samples = Math.floor(totalSteps / defaultValidEvery(totalSteps));
    const longestValid = valid.reduce((m, n) => Math.max(m, n), 0);
    // a sample window moves through the rows; its longest row is bounded by the file's longest
    evalSlots += samples * sampleRows * longestValid;
    for (let at = 0; at < valid.length; at += microBatchSize) {
      evalSlots += slotsOf(
        valid,
        Array.from({ length: Math.min(microBatchSize, valid.length - at) }, (_, i) => at + i),
      );
    }
  }
  return { stepsPerEpoch: perEpoch, totalSteps, trainSlots, evalSlots, widestMicroBatch: widest };
}
