// The training loop, for any objective (train-objective.ts): supervised fine-tuning on token rows
// (sft-objective.ts, what `train: TokenBatch` means) or DPO on preference pairs (dpo-objective.ts,
// `train: dpoObjective(…)`); stepping, accumulation, clipping, schedule and checkpoints are shared.
//
// API (for the jobs worker)
// -------------------------
//   const hp = resolveHyperparameters(job.hyperparameters, sft.stats.examples);  // write hp back
//   const model = await loadModel(folder, hp.full_finetune
//     ? { fullFinetune: true, seed }
//     : { lora: { r: hp.lora_rank, alpha: hp.lora_alpha, dropout: hp.lora_dropout,
//                 targetModules: hp.target_modules }, seed });   // seed: LoRA init + dropout
//   const result = await train({
//     model,            // CausalLM (model/causal-lm.ts), or anything shaped like TrainableModel
//     train: sft.batch, // TokenBatch of every training row (data/build-dataset.ts)
//     validation,       // optional TokenBatch of validation rows
//     hyperparameters: hp,
//     seed,             // the job's seed: epoch order (data/batch-order.ts)
//     onStep,           // (StepMetrics) after every optimizer step: step, total_steps, epoch,
//                       //   train_loss, train_mean_token_accuracy, valid_loss?,
//                       //   valid_mean_token_accuracy?, learning_rate, grad_norm, trained_tokens, step_ms,
//                       //   extra (the objective's metrics, train_/valid_ prefixed)
//     onEpochEnd,       // ({ epoch, step, checkpoint: Uint8Array, metrics }) after every epoch; the
//                       //   model's variables are the epoch's weights here: save the checkpoint's
//                       //   adapter now (model.saveAdapter(dir)) if the API should serve it
//     shouldStop,       // () => boolean | Promise<boolean>: polled before every step and between
//                       //   micro-batches (a stop mid-step drops that half-done step)
//     signal,           // AbortSignal, checked at the same points
//     resumeFrom,       // Uint8Array from onEpochEnd or a stopped result: continue exactly there
//     checkpointMeta,   // stored in every checkpoint (e.g. job id, resolved hyperparameters)
//     // tuning knobs, rarely needed: optimizer (default new AdamW({ weightDecay: hp.weight_decay })),
//     // microBatchSize (default 4 rows), maxGradNorm (1), validEvery (≈ total/10 steps),
//     // validSampleRows (one micro-batch), divergenceFactor (5), batchOrder
//   });
//   "completed": result.metrics { step, train_loss, train_mean_token_accuracy, full_valid_loss?,
//     full_valid_mean_token_accuracy? }; the model holds the trained weights: write the outputs
//     with model.saveAdapter(dir) (PEFT layout) or model.saveFullModel(dir) (model.safetensors).
//   "stopped": result.checkpoint is the state after the last finished step (pause: store it,
//     resume from it later; cancel: drop it).
//   result.trainedTokens: real (non-padding) tokens trained on, over all epochs.
//   Divergence (NaN/inf loss, or loss > max(divergenceFactor × first loss, first loss + 3)) throws
//   TrainingDivergedError; its message tells the user to lower the learning-rate multiplier.
//   Each step runs synchronously on the backend between awaits: a heartbeat timer fires between
//   micro-batches and steps, so its period must exceed one micro-batch's time.
//
// One optimizer step = batch_size rows, run as micro-batches of `microBatchSize` rows whose
// gradients are summed; each micro-batch's summed token loss is divided by the label-token
// count of the WHOLE step, so the update equals the one of a single big batch (a token-level
// mean, not a mean of means). Then: global-norm clipping (1.0), the schedule's learning rate
// (schedule.ts, transformers' formulas), AdamW. Each step reads back one small tensor (loss,
// correct tokens, grad norm).

import * as tf from "@tensorflow/tfjs-core";
import { ensureGradientsRegistered } from "../backend/tfjs-gradients.js";
import type { TokenBatch } from "../data/batch.js";
import { batchOrder } from "../data/batch-order.js";
import { AdamW } from "./adamw.js";
import {
  decodeCheckpoint,
  encodeCheckpoint,
  type TensorData,
  type TrainCheckpoint,
} from "./checkpoint-state.js";
import { clipGradNorm, DEFAULT_MAX_GRAD_NORM } from "./clip-grad-norm.js";
import { peakLearningRate, type ResolvedHyperparameters } from "./hyperparameters.js";
import type { RngState } from "./rng.js";
import { learningRateAt } from "./schedule.js";
import { sftObjective } from "./sft-objective.js";
import { objectiveGradients, sumCounts, type TrainObjective } from "./train-objective.js";
import { defaultValidEvery, stepsPerEpoch as stepsInEpoch } from "./training-plan.js";

/** What the loop needs from a model; CausalLM (model/causal-lm.ts) has this shape. */
export interface TrainableModel {
  /** The variables the optimizer updates, keyed by the name they are saved under. */
  readonly trainableParams: Map<string, tf.Variable>;
  /**
   * For one micro-batch: the SUM of token cross-entropies over its label tokens and how many
   * label tokens the argmax predicts correctly. `training` turns dropout on.
   */
  lossTerms(batch: TokenBatch, options: { training?: boolean }): { lossSum: tf.Scalar; correct: tf.Scalar };
  /** the model's dropout RNG, saved in checkpoints so a resumed run draws the same masks */
  rngState?(): RngState;
  setRngState?(state: RngState): void;
}

/** What the loop needs from an optimizer (AdamW). */
export interface TrainOptimizer {
  /** Update every variable that has a gradient, at learning rate `lr`. */
  applyGradients(variables: Map<string, tf.Variable>, grads: tf.NamedTensorMap, lr: number): void;
  exportState(): { scalars: Record<string, number>; tensors: Map<string, TensorData> };
  importState(state: { scalars: Record<string, number>; tensors: Map<string, TensorData> }): void;
}

export type TrainHyperparameters = Pick<
  ResolvedHyperparameters,
  "n_epochs" | "batch_size" | "learning_rate_multiplier" | "warmup_ratio" | "lr_scheduler" | "full_finetune"
> & { weight_decay?: number };

export interface StepMetrics {
  /** 1-based optimizer step just finished */
  step: number;
  total_steps: number;
  /** 0-based epoch */
  epoch: number;
  train_loss: number;
  /** supervised objective only */
  train_mean_token_accuracy?: number;
  /** present on steps where the validation sample was scored */
  valid_loss?: number;
  valid_mean_token_accuracy?: number;
  /**
   * the objective's metrics with their train_/valid_ prefix, e.g. train_mean_token_accuracy
   * (supervised) or train_rewards_chosen, …_rejected, …_accuracies, …_margins (DPO)
   */
  extra: Record<string, number>;
  learning_rate: number;
  grad_norm: number;
  /** label tokens in this step */
  label_tokens: number;
  /** real tokens trained so far */
  trained_tokens: number;
  step_ms: number;
}

export interface EpochEnd {
  /** 0-based epoch just finished */
  epoch: number;
  step: number;
  /** resume state (also the pause/crash path); pass back as `resumeFrom` */
  checkpoint: Uint8Array;
  /** the last step's metrics */
  metrics: StepMetrics | null;
}

export interface FinalMetrics {
  step: number;
  train_loss: number | null;
  train_mean_token_accuracy: number | null;
  full_valid_loss?: number;
  full_valid_mean_token_accuracy?: number;
  /** the objective's metrics on the whole validation set, prefixed full_valid_ */
  extra: Record<string, number>;
}

export type TrainResult =
  | { status: "completed"; step: number; totalSteps: number; trainedTokens: number; metrics: FinalMetrics }
  | { status: "stopped"; step: number; totalSteps: number; trainedTokens: number; checkpoint: Uint8Array };

export interface TrainOptions {
  model: TrainableModel;
  /** default: AdamW (adamw.ts) with the hyperparameters' weight_decay */
  optimizer?: TrainOptimizer;
  /** training rows (supervised objective) or any objective (e.g. DPO pairs, dpo-objective.ts) */
  train: TokenBatch | TrainObjective;
  validation?: TokenBatch | TrainObjective;
  hyperparameters: TrainHyperparameters;
  seed: number;
  /** row order of an epoch; default: data/batch-order.ts batchOrder */
  batchOrder?: (numRows: number, epoch: number, seed: number) => readonly number[];
  /** rows per forward/backward pass; batch_size is reached by accumulation (default 4) */
  microBatchSize?: number;
  maxGradNorm?: number;
  /** score the validation sample every N steps (default: about 10 times per run; 0 = never) */
  validEvery?: number;
  /** rows in each validation sample (default: one micro-batch) */
  validSampleRows?: number;
  /** stop when the loss exceeds this × the first step's loss (default 5) */
  divergenceFactor?: number;
  onStep?: (metrics: StepMetrics) => void | Promise<void>;
  onEpochEnd?: (end: EpochEnd) => void | Promise<void>;
  shouldStop?: () => boolean | Promise<boolean>;
  signal?: AbortSignal;
  resumeFrom?: Uint8Array;
  /** stored in checkpoints, e.g. the job id and resolved hyperparameters */
  checkpointMeta?: Record<string, unknown>;
}

export class TrainingDivergedError extends Error {
  constructor(
    readonly step: number,
    readonly loss: number,
    readonly initialLoss: number | null,
    readonly learningRateMultiplier: number,
  ) {
    const what = Number.isFinite(loss)
      ? `the training loss rose to ${loss.toFixed(4)} from ${initialLoss?.toFixed(4)} at the first step`
      : `the training loss became ${loss}`;
    super(
      `Training diverged at step ${step}: ${what}. ` +
        `Lower the learning_rate_multiplier (it was ${learningRateMultiplier}) and try again.`,
    );
    this.name = "TrainingDivergedError";
  }
}

interface LossAndAccuracy {
  loss: number;
  accuracy: number;
  tokens: number;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The explosion half of the divergence check: above `factor` × the first step's loss, and at
 * least 3 nats above it, so a first loss near 0 does not make ordinary batch noise fatal.
 */
export function lossExploded(loss: number, initialLoss: number, factor: number): boolean {
  return loss > Math.max(factor * initialLoss, initialLoss + 3);
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function readVariables(variables: Map<string, tf.Variable>): Map<string, TensorData> {
  const out = new Map<string, TensorData>();
  for (const [name, v] of variables)
    out.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
  return out;
}

function writeVariables(variables: Map<string, tf.Variable>, weights: Map<string, TensorData>): void {
  for (const [name, v] of variables) {
    const saved = weights.get(name);
    if (!saved) throw new Error(`checkpoint has no weights for variable "${name}"`);
    if (saved.shape.join(",") !== v.shape.join(",")) {
      throw new Error(`checkpoint weights "${name}" have shape [${saved.shape}], the model has [${v.shape}]`);
    }
    tf.tidy(() => v.assign(tf.tensor(saved.data, saved.shape)));
  }
  for (const name of weights.keys()) {
    if (!variables.has(name))
      throw new Error(`checkpoint has weights "${name}" that the model does not train`);
  }
}

/** Loss and token accuracy of `rows` without gradients (validation); null when stopped midway. */
export async function evaluateRows(
  model: TrainableModel,
  rows: TokenBatch,
  indices: readonly number[],
  microBatchSize: number,
  stopRequested?: () => Promise<boolean>,
): Promise<LossAndAccuracy | null> {
  const r = await evaluateObjective(sftObjective(model, rows), indices, microBatchSize, stopRequested);
  if (r === null) return null;
  return { loss: r.loss, accuracy: r.metrics.mean_token_accuracy ?? Number.NaN, tokens: r.labelTokens };
}

/**
 * An objective's loss and metrics over `indices` without gradients (validation), normalised over
 * all of them as one step; NaN when nothing is scored; null when stopped midway.
 */
export async function evaluateObjective(
  objective: TrainObjective,
  indices: readonly number[],
  microBatchSize: number,
  stopRequested?: () => Promise<boolean>,
): Promise<{ loss: number; metrics: Record<string, number>; labelTokens: number } | null> {
  const micro = chunk(indices, microBatchSize).map((part) => objective.select(part));
  const counts = sumCounts(micro);
  const labelTokens = micro.reduce((n, b) => n + b.labelTokens, 0);
  if (objective.empty(counts)) {
    const nan = Object.fromEntries(Object.keys(objective.metrics([], counts)).map((k) => [k, Number.NaN]));
    return { loss: Number.NaN, metrics: nan, labelTokens };
  }
  let loss = 0;
  let stats: number[] = [];
  for (const batch of micro) {
    if (objective.empty(batch.counts)) continue;
    const both = tf.tidy(() => {
      const r = objective.loss(batch, counts, false);
      return tf.concat([tf.reshape(r.loss, [1]), r.stats]);
    });
    const values = await both.data();
    both.dispose();
    loss += values[0]!;
    stats = Array.from(values.subarray(1), (v, i) => (stats[i] ?? 0) + v);
    await yieldToEventLoop();
    if (stopRequested && (await stopRequested())) return null;
  }
  return { loss, metrics: objective.metrics(stats, counts), labelTokens };
}

function prefixed(prefix: string, metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).map(([k, v]) => [`${prefix}${k}`, v]));
}

export async function train(options: TrainOptions): Promise<TrainResult> {
  ensureGradientsRegistered();
  if (options.optimizer) return runTraining(options, options.optimizer);
  // an optimizer made here is disposed here: its moments would otherwise outlive the job
  const optimizer = new AdamW({ weightDecay: options.hyperparameters.weight_decay ?? 0 });
  try {
    return await runTraining(options, optimizer);
  } finally {
    optimizer.dispose();
  }
}

async function runTraining(options: TrainOptions, optimizer: TrainOptimizer): Promise<TrainResult> {
  const { model, hyperparameters: hp, seed } = options;
  const asObjective = (data: TokenBatch | TrainObjective): TrainObjective =>
    "kind" in data && data.kind === "objective" ? data : sftObjective(model, data as TokenBatch);
  const objective = asObjective(options.train);
  const validation = options.validation ? asObjective(options.validation) : undefined;
  const size = objective.size;
  const microBatchSize = options.microBatchSize ?? 4;
  const maxGradNorm = options.maxGradNorm ?? DEFAULT_MAX_GRAD_NORM;
  const divergenceFactor = options.divergenceFactor ?? 5;
  if (!(Number.isInteger(microBatchSize) && microBatchSize > 0))
    throw new Error(`microBatchSize must be a positive integer, got ${microBatchSize}`);
  if (size === 0) throw new Error("train: the training set has no rows");

  const stepsPerEpoch = stepsInEpoch(size, hp.batch_size);
  const totalSteps = stepsPerEpoch * hp.n_epochs;
  const peakLr = peakLearningRate(hp);
  const schedule = { type: hp.lr_scheduler, peakLr, totalSteps, warmupRatio: hp.warmup_ratio };
  const validEvery = options.validEvery ?? defaultValidEvery(totalSteps);
  const validSampleRows = Math.min(options.validSampleRows ?? microBatchSize, validation?.size ?? 0);
  const variables = model.trainableParams;
  if (variables.size === 0)
    throw new Error("train: the model has no trainable parameters (attach LoRA or enable full fine-tuning)");
  const varList = [...variables.values()];
  const nameOf = new Map([...variables].map(([name, v]) => [v.name, name]));

  let step = 0;
  let epoch = 0;
  let stepInEpoch = 0;
  let initialLoss: number | null = null;
  let trainedTokens = 0;
  let validSamples = 0;

  if (options.resumeFrom) {
    const saved = decodeCheckpoint(options.resumeFrom);
    const s = saved.state;
    if (s.totalSteps !== totalSteps || s.stepsPerEpoch !== stepsPerEpoch || s.seed !== seed) {
      throw new Error(
        `checkpoint is for a different run: ${s.totalSteps} steps of ${s.stepsPerEpoch} per epoch, seed ${s.seed}; ` +
          `this run has ${totalSteps} of ${stepsPerEpoch}, seed ${seed}`,
      );
    }
    writeVariables(variables, saved.weights);
    optimizer.importState({ scalars: s.optimizerScalars, tensors: saved.optimizer });
    ({ step, epoch, stepInEpoch, initialLoss, trainedTokens } = s);
    if (s.rng && model.setRngState) model.setRngState(s.rng);
    validSamples = Math.floor(step / validEvery);
  }

  const snapshot = (): Uint8Array => {
    const opt = optimizer.exportState();
    const checkpoint: TrainCheckpoint = {
      state: {
        step,
        totalSteps,
        stepsPerEpoch,
        epoch,
        stepInEpoch,
        seed,
        rng: model.rngState ? model.rngState() : null,
        initialLoss,
        trainedTokens,
        optimizerScalars: opt.scalars,
        meta: options.checkpointMeta,
      },
      weights: readVariables(variables),
      optimizer: opt.tensors,
    };
    return encodeCheckpoint(checkpoint);
  };

  const stopRequested = async (): Promise<boolean> =>
    options.signal?.aborted === true || (options.shouldStop ? await options.shouldStop() : false);

  let last: StepMetrics | null = null;
  for (; epoch < hp.n_epochs; epoch++, stepInEpoch = 0) {
    const order = (options.batchOrder ?? batchOrder)(size, epoch, seed);
    if (order.length !== size) {
      throw new Error(`batchOrder returned ${order.length} rows for epoch ${epoch}, expected ${size}`);
    }
    for (; stepInEpoch < stepsPerEpoch; ) {
      if (await stopRequested())
        return { status: "stopped", step, totalSteps, trainedTokens, checkpoint: snapshot() };
      const started = performance.now();
      const stepRows = order.slice(stepInEpoch * hp.batch_size, (stepInEpoch + 1) * hp.batch_size);
      const micro = chunk(stepRows, microBatchSize).map((part) => objective.select(part));
      const stepCounts = sumCounts(micro);
      const empty = objective.empty(stepCounts);
      const labelTokens = micro.reduce((n, b) => n + b.labelTokens, 0);
      const realTokens = micro.reduce((n, b) => n + b.realTokens, 0);
      const lr = learningRateAt(schedule, step);

      // Σ over micro-batches of the gradients of each one's share of the step's loss
      const rngAtStepStart = model.rngState?.();
      let gradSum: tf.NamedTensorMap | null = null;
      let lossTotal: tf.Scalar = tf.scalar(0);
      let statsTotal: tf.Tensor1D | null = null;
      let stoppedMidStep = false;
      for (const [i, batch] of micro.entries()) {
        if (empty) continue;
        // between micro-batches: serve timers (heartbeats) and let a stop land within the step
        if (i > 0) {
          await yieldToEventLoop();
          if (await stopRequested()) {
            stoppedMidStep = true;
            break;
          }
        }
        const { value, stats, grads } = objectiveGradients(objective, batch, stepCounts, varList, true);
        const prev: tf.NamedTensorMap | null = gradSum;
        if (prev === null) {
          gradSum = grads;
        } else {
          const summed: tf.NamedTensorMap = {};
          for (const key of Object.keys(prev)) summed[key] = tf.add(prev[key]!, grads[key]!);
          tf.dispose([prev, grads]);
          gradSum = summed;
        }
        const nl = tf.add(lossTotal, value) as tf.Scalar;
        const ns: tf.Tensor1D = statsTotal === null ? stats : (tf.add(statsTotal, stats) as tf.Tensor1D);
        tf.dispose([lossTotal, value]);
        if (statsTotal !== null) tf.dispose([statsTotal, stats]);
        lossTotal = nl;
        statsTotal = ns;
      }

      if (stoppedMidStep) {
        // drop the half-done step; rewind the dropout RNG so a resume redoes it identically
        tf.dispose([gradSum ?? {}, lossTotal, statsTotal ?? []]);
        if (rngAtStepStart && model.setRngState) model.setRngState(rngAtStepStart);
        return { status: "stopped", step, totalSteps, trainedTokens, checkpoint: snapshot() };
      }
      let gradNormT: tf.Scalar = tf.scalar(0);
      if (gradSum !== null) {
        const byName: tf.NamedTensorMap = {};
        for (const [tfName, g] of Object.entries(gradSum as tf.NamedTensorMap))
          byName[nameOf.get(tfName) ?? tfName] = g;
        const { grads: clipped, norm } = clipGradNorm(byName, maxGradNorm);
        optimizer.applyGradients(variables, clipped, lr);
        tf.dispose([gradSum, clipped, gradNormT]);
        gradNormT = norm;
      }
      const packed = tf.tidy(() =>
        tf.concat([tf.stack([lossTotal, gradNormT]), statsTotal ?? tf.zeros([0])]),
      );
      const values = await packed.data();
      tf.dispose([packed, lossTotal, gradNormT, statsTotal ?? []]);
      const [loss, gradNorm] = [values[0]!, values[1]!];
      const stepStats = Array.from(values.subarray(2));

      step += 1;
      stepInEpoch += 1;
      trainedTokens += realTokens;
      const trainLoss = empty ? 0 : loss;
      if (
        !Number.isFinite(trainLoss) ||
        (initialLoss !== null && lossExploded(trainLoss, initialLoss, divergenceFactor))
      ) {
        throw new TrainingDivergedError(step, trainLoss, initialLoss, hp.learning_rate_multiplier);
      }
      if (initialLoss === null && !empty) initialLoss = trainLoss;

      const trainMetrics = objective.metrics(stepStats, stepCounts);
      const metrics: StepMetrics = {
        step,
        total_steps: totalSteps,
        epoch,
        train_loss: trainLoss,
        learning_rate: lr,
        grad_norm: gradNorm,
        label_tokens: labelTokens,
        trained_tokens: trainedTokens,
        step_ms: performance.now() - started,
        extra: prefixed("train_", trainMetrics),
      };
      if (trainMetrics.mean_token_accuracy !== undefined)
        metrics.train_mean_token_accuracy = trainMetrics.mean_token_accuracy;
      if (validation && validSampleRows > 0 && validEvery > 0 && step % validEvery === 0) {
        // a window that moves through the validation rows, so samples differ but depend only on the step
        const start = (validSamples * validSampleRows) % validation.size;
        const indices = Array.from({ length: validSampleRows }, (_, i) => (start + i) % validation.size);
        validSamples += 1;
        const v = (await evaluateObjective(validation, indices, microBatchSize))!;
        metrics.valid_loss = v.loss;
        if (v.metrics.mean_token_accuracy !== undefined)
          metrics.valid_mean_token_accuracy = v.metrics.mean_token_accuracy;
        Object.assign(metrics.extra, prefixed("valid_", v.metrics));
      }
      last = metrics;
      await options.onStep?.(metrics);
      await yieldToEventLoop();
    }
    if (options.onEpochEnd) {
      // the checkpoint points at the start of the next epoch
      epoch += 1;
      stepInEpoch = 0;
      const checkpoint = snapshot();
      epoch -= 1;
      await options.onEpochEnd({ epoch, step, checkpoint, metrics: last });
    }
  }

  const metrics: FinalMetrics = {
    step,
    train_loss: last?.train_loss ?? null,
    train_mean_token_accuracy: last?.train_mean_token_accuracy ?? null,
    extra: {},
  };
  if (validation && validation.size > 0) {
    const all = Array.from({ length: validation.size }, (_, i) => i);
    // a long validation file must not delay a cancel: a stop here returns the final state,
    // and a resume from it only re-runs this validation
    const v = await evaluateObjective(validation, all, microBatchSize, stopRequested);
    if (v === null) return { status: "stopped", step, totalSteps, trainedTokens, checkpoint: snapshot() };
    metrics.full_valid_loss = v.loss;
    if (v.metrics.mean_token_accuracy !== undefined)
      metrics.full_valid_mean_token_accuracy = v.metrics.mean_token_accuracy;
    metrics.extra = prefixed("full_valid_", v.metrics);
  }
  return { status: "completed", step, totalSteps, trainedTokens, metrics };
}
