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
// gradients are summed by computeGradients (compute-gradients.ts, the one gradient path, which
// the golden checks verify too); each micro-batch's summed token loss is divided by the label-token
// count of the WHOLE step, so the update equals the one of a single big batch (a token-level
// mean, not a mean of means). Then: global-norm clipping (1.0), the schedule's learning rate
// (schedule.ts, transformers' formulas), AdamW. Each step reads back one small tensor (loss,
// correct tokens, grad norm). A run's place is a TrainingPosition (step, epoch, step in epoch):
// checkpoints store it, and an epoch's end checkpoints the start of the next epoch.

import * as tf from "@tensorflow/tfjs-core";
import type { TokenBatch } from "../data/batch.js";
import { batchOrder } from "../data/batch-order.js";
import { AdamW } from "./adamw.js";
import { decodeCheckpoint, encodeCheckpoint } from "./checkpoint-state.js";
import { clipGradNorm, DEFAULT_MAX_GRAD_NORM } from "./clip-grad-norm.js";
import { computeGradients, type StepGradients } from "./compute-gradients.js";
import { lossExploded, TrainingDivergedError } from "./divergence.js";
import { chunk, evaluateObjective, yieldToEventLoop } from "./evaluate-objective.js";
import { peakLearningRate } from "./hyperparameters.js";
import { learningRateAt, type ScheduleConfig } from "./schedule.js";
import { sftObjective } from "./sft-objective.js";
import type { ObjectiveBatch, TrainObjective } from "./train-objective.js";
import type {
  FinalMetrics,
  StepMetrics,
  TrainableModel,
  TrainOptimizer,
  TrainOptions,
  TrainResult,
} from "./train-options.js";
import { defaultValidEvery, stepsPerEpoch as stepsInEpoch } from "./training-plan.js";
import { readVariables, writeVariables } from "./variable-data.js";

export { lossExploded, TrainingDivergedError } from "./divergence.js";
export { evaluateObjective, evaluateRows } from "./evaluate-objective.js";
export type {
  EpochEnd,
  FinalMetrics,
  StepMetrics,
  TrainableModel,
  TrainHyperparameters,
  TrainOptimizer,
  TrainOptions,
  TrainResult,
} from "./train-options.js";

/** Where a run stands: steps done, and the next step's place in the data (what a checkpoint resumes at). */
export interface TrainingPosition {
  /** optimizer steps completed */
  step: number;
  /** 0-based epoch the next step belongs to */
  epoch: number;
  /** steps already done inside `epoch` */
  stepInEpoch: number;
}

/** The position an epoch's end checkpoints: the start of the next epoch. */
export function startOfNextEpoch(p: TrainingPosition): TrainingPosition {
  return { step: p.step, epoch: p.epoch + 1, stepInEpoch: 0 };
}

/** A run's fixed facts, resolved once from its options. */
interface RunPlan {
  options: TrainOptions;
  model: TrainableModel;
  optimizer: TrainOptimizer;
  objective: TrainObjective;
  validation: TrainObjective | undefined;
  microBatchSize: number;
  maxGradNorm: number;
  divergenceFactor: number;
  stepsPerEpoch: number;
  totalSteps: number;
  schedule: ScheduleConfig;
  validEvery: number;
  validSampleRows: number;
  stopRequested: () => Promise<boolean>;
}

/** What changes from step to step; all of it but `last` is in a checkpoint. */
interface RunState {
  position: TrainingPosition;
  initialLoss: number | null;
  trainedTokens: number;
  /** validation samples scored so far (where the next sample window starts) */
  validSamples: number;
  last: StepMetrics | null;
}

export async function train(options: TrainOptions): Promise<TrainResult> {
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
  const plan = planRun(options, optimizer);
  const state = options.resumeFrom ? resumeRun(plan, options.resumeFrom) : newRunState();
  const epochs = options.hyperparameters.n_epochs;
  for (; state.position.epoch < epochs; state.position = startOfNextEpoch(state.position)) {
    const order = epochOrder(plan, state.position.epoch);
    while (state.position.stepInEpoch < plan.stepsPerEpoch) {
      if (await plan.stopRequested()) return stopped(plan, state);
      const metrics = await trainStep(plan, state, order);
      if (metrics === null) return stopped(plan, state);
      state.last = metrics;
      await options.onStep?.(metrics);
      await yieldToEventLoop();
    }
    await endEpoch(plan, state);
  }
  return finish(plan, state);
}

function asObjective(model: TrainableModel, data: TokenBatch | TrainObjective): TrainObjective {
  return "kind" in data && data.kind === "objective" ? data : sftObjective(model, data as TokenBatch);
}

function planRun(options: TrainOptions, optimizer: TrainOptimizer): RunPlan {
  const { model, hyperparameters: hp } = options;
  const objective = asObjective(model, options.train);
  const validation = options.validation ? asObjective(model, options.validation) : undefined;
  const microBatchSize = options.microBatchSize ?? 4;
  if (!(Number.isInteger(microBatchSize) && microBatchSize > 0))
    throw new Error(`microBatchSize must be a positive integer, got ${microBatchSize}`);
  if (objective.size === 0) throw new Error("train: the training set has no rows");
  const stepsPerEpoch = stepsInEpoch(objective.size, hp.batch_size);
  const totalSteps = stepsPerEpoch * hp.n_epochs;
  if (model.trainableParams.size === 0)
    throw new Error("train: the model has no trainable parameters (attach LoRA or enable full fine-tuning)");
  return {
    options,
    model,
    optimizer,
    objective,
    validation,
    microBatchSize,
    maxGradNorm: options.maxGradNorm ?? DEFAULT_MAX_GRAD_NORM,
    divergenceFactor: options.divergenceFactor ?? 5,
    stepsPerEpoch,
    totalSteps,
    schedule: {
      type: hp.lr_scheduler,
      peakLr: peakLearningRate(hp),
      totalSteps,
      warmupRatio: hp.warmup_ratio,
    },
    validEvery: options.validEvery ?? defaultValidEvery(totalSteps),
    validSampleRows: Math.min(options.validSampleRows ?? microBatchSize, validation?.size ?? 0),
    stopRequested: async () =>
      options.signal?.aborted === true || (options.shouldStop ? await options.shouldStop() : false),
  };
}

function newRunState(): RunState {
  return {
    position: { step: 0, epoch: 0, stepInEpoch: 0 },
    initialLoss: null,
    trainedTokens: 0,
    validSamples: 0,
    last: null,
  };
}

/** The state a checkpoint holds, loaded into the model and the optimizer. */
function resumeRun(plan: RunPlan, bytes: Uint8Array): RunState {
  const { seed } = plan.options;
  const saved = decodeCheckpoint(bytes);
  const s = saved.state;
  if (s.totalSteps !== plan.totalSteps || s.stepsPerEpoch !== plan.stepsPerEpoch || s.seed !== seed) {
    throw new Error(
      `checkpoint is for a different run: ${s.totalSteps} steps of ${s.stepsPerEpoch} per epoch, seed ${s.seed}; ` +
        `this run has ${plan.totalSteps} of ${plan.stepsPerEpoch}, seed ${seed}`,
    );
  }
  writeVariables(plan.model.trainableParams, saved.weights);
  plan.optimizer.importState({ scalars: s.optimizerScalars, tensors: saved.optimizer });
  if (s.rng && plan.model.setRngState) plan.model.setRngState(s.rng);
  return {
    position: { step: s.step, epoch: s.epoch, stepInEpoch: s.stepInEpoch },
    initialLoss: s.initialLoss,
    trainedTokens: s.trainedTokens,
    validSamples: Math.floor(s.step / plan.validEvery),
    last: null,
  };
}

/** The run's state at `position` as checkpoint bytes. */
function snapshot(plan: RunPlan, state: RunState, position: TrainingPosition): Uint8Array {
  const opt = plan.optimizer.exportState();
  return encodeCheckpoint({
    state: {
      ...position,
      totalSteps: plan.totalSteps,
      stepsPerEpoch: plan.stepsPerEpoch,
      seed: plan.options.seed,
      rng: plan.model.rngState ? plan.model.rngState() : null,
      initialLoss: state.initialLoss,
      trainedTokens: state.trainedTokens,
      optimizerScalars: opt.scalars,
      meta: plan.options.checkpointMeta,
    },
    weights: readVariables(plan.model.trainableParams),
    optimizer: opt.tensors,
  });
}

function stopped(plan: RunPlan, state: RunState): TrainResult {
  const { step } = state.position;
  const checkpoint = snapshot(plan, state, state.position);
  return {
    status: "stopped",
    step,
    totalSteps: plan.totalSteps,
    trainedTokens: state.trainedTokens,
    checkpoint,
  };
}

function epochOrder(plan: RunPlan, epoch: number): readonly number[] {
  const size = plan.objective.size;
  const order = (plan.options.batchOrder ?? batchOrder)(size, epoch, plan.options.seed);
  if (order.length !== size) {
    throw new Error(`batchOrder returned ${order.length} rows for epoch ${epoch}, expected ${size}`);
  }
  return order;
}

/** The next step's examples, cut into micro-batches. */
function stepMicroBatches(plan: RunPlan, order: readonly number[], stepInEpoch: number): ObjectiveBatch[] {
  const batchSize = plan.options.hyperparameters.batch_size;
  const stepRows = order.slice(stepInEpoch * batchSize, (stepInEpoch + 1) * batchSize);
  return chunk(stepRows, plan.microBatchSize).map((part) => plan.objective.select(part));
}

/**
 * One optimizer step: the gradients of its micro-batches, clipping, the update, the divergence
 * check and the step's metrics. Null when a stop landed between micro-batches: the half-done
 * step is dropped and the dropout RNG rewound, so a resume redoes it identically.
 */
async function trainStep(
  plan: RunPlan,
  state: RunState,
  order: readonly number[],
): Promise<StepMetrics | null> {
  const started = performance.now();
  const micro = stepMicroBatches(plan, order, state.position.stepInEpoch);
  const lr = learningRateAt(plan.schedule, state.position.step);
  const rngAtStepStart = plan.model.rngState?.();
  const between = async () => {
    // serve timers (heartbeats) and let a stop land within the step
    await yieldToEventLoop();
    return plan.stopRequested();
  };
  const gradients = await computeGradients(plan.model, plan.objective, micro, { training: true, between });
  if (gradients === null) {
    if (rngAtStepStart && plan.model.setRngState) plan.model.setRngState(rngAtStepStart);
    return null;
  }
  const empty = plan.objective.empty(gradients.stepCounts);
  const result = await applyStep(plan, gradients, lr);
  const position = state.position;
  state.position = { step: position.step + 1, epoch: position.epoch, stepInEpoch: position.stepInEpoch + 1 };
  state.trainedTokens += micro.reduce((n, b) => n + b.realTokens, 0);
  const trainLoss = empty ? 0 : result.loss;
  checkDivergence(plan, state, trainLoss, empty);
  const metrics = stepMetrics(plan, state, {
    loss: trainLoss,
    lr,
    gradNorm: result.gradNorm,
    labelTokens: micro.reduce((n, b) => n + b.labelTokens, 0),
    trainMetrics: plan.objective.metrics(result.stats, gradients.stepCounts),
    started,
  });
  await sampleValidation(plan, state, metrics);
  return metrics;
}

/** Clips the step's gradients, updates the weights, and reads back loss, grad norm and statistics. */
async function applyStep(
  plan: RunPlan,
  gradients: StepGradients,
  lr: number,
): Promise<{ loss: number; gradNorm: number; stats: number[] }> {
  let gradNorm: tf.Scalar;
  if (gradients.grads === null) gradNorm = tf.scalar(0);
  else {
    const clipped = clipGradNorm(gradients.grads, plan.maxGradNorm);
    plan.optimizer.applyGradients(plan.model.trainableParams, clipped.grads, lr);
    tf.dispose([gradients.grads, clipped.grads]);
    gradNorm = clipped.norm;
  }
  const { loss, stats } = gradients;
  // one read-back per step
  const packed = tf.tidy(() => tf.concat([tf.stack([loss, gradNorm]), stats ?? tf.zeros([0])]));
  const values = await packed.data();
  tf.dispose([packed, loss, gradNorm, stats ?? []]);
  return { loss: values[0]!, gradNorm: values[1]!, stats: Array.from(values.subarray(2)) };
}

/** Throws TrainingDivergedError on a NaN/inf or exploded loss; the first real loss is the reference. */
function checkDivergence(plan: RunPlan, state: RunState, loss: number, empty: boolean): void {
  const { initialLoss } = state;
  if (
    !Number.isFinite(loss) ||
    (initialLoss !== null && lossExploded(loss, initialLoss, plan.divergenceFactor))
  ) {
    const multiplier = plan.options.hyperparameters.learning_rate_multiplier;
    throw new TrainingDivergedError(state.position.step, loss, initialLoss, multiplier);
  }
  if (initialLoss === null && !empty) state.initialLoss = loss;
}

function stepMetrics(
  plan: RunPlan,
  state: RunState,
  step: {
    loss: number;
    lr: number;
    gradNorm: number;
    labelTokens: number;
    trainMetrics: Record<string, number>;
    started: number;
  },
): StepMetrics {
  const metrics: StepMetrics = {
    step: state.position.step,
    total_steps: plan.totalSteps,
    epoch: state.position.epoch,
    train_loss: step.loss,
    learning_rate: step.lr,
    grad_norm: step.gradNorm,
    label_tokens: step.labelTokens,
    trained_tokens: state.trainedTokens,
    step_ms: performance.now() - step.started,
    extra: prefixed("train_", step.trainMetrics),
  };
  if (step.trainMetrics.mean_token_accuracy !== undefined)
    metrics.train_mean_token_accuracy = step.trainMetrics.mean_token_accuracy;
  return metrics;
}

/** Every validEvery steps: the loss and metrics of a window of validation examples, into `metrics`. */
async function sampleValidation(plan: RunPlan, state: RunState, metrics: StepMetrics): Promise<void> {
  const { validation, validSampleRows, validEvery } = plan;
  if (!validation || validSampleRows <= 0 || validEvery <= 0 || state.position.step % validEvery !== 0)
    return;
  // a window that moves through the validation rows, so samples differ but depend only on the step
  const start = (state.validSamples * validSampleRows) % validation.size;
  const indices = Array.from({ length: validSampleRows }, (_, i) => (start + i) % validation.size);
  state.validSamples += 1;
  const v = (await evaluateObjective(validation, indices, plan.microBatchSize))!;
  metrics.valid_loss = v.loss;
  if (v.metrics.mean_token_accuracy !== undefined)
    metrics.valid_mean_token_accuracy = v.metrics.mean_token_accuracy;
  Object.assign(metrics.extra, prefixed("valid_", v.metrics));
}

/** After an epoch: its checkpoint, which resumes at the start of the next epoch. */
async function endEpoch(plan: RunPlan, state: RunState): Promise<void> {
  if (!plan.options.onEpochEnd) return;
  const { epoch, step } = state.position;
  const checkpoint = snapshot(plan, state, startOfNextEpoch(state.position));
  await plan.options.onEpochEnd({ epoch, step, checkpoint, metrics: state.last });
}

/** The last step's metrics and the whole validation set's; a stop during that validation returns the final state. */
async function finish(plan: RunPlan, state: RunState): Promise<TrainResult> {
  const { step } = state.position;
  const metrics: FinalMetrics = {
    step,
    train_loss: state.last?.train_loss ?? null,
    train_mean_token_accuracy: state.last?.train_mean_token_accuracy ?? null,
    extra: {},
  };
  const { validation } = plan;
  if (validation && validation.size > 0) {
    const all = Array.from({ length: validation.size }, (_, i) => i);
    // a long validation file must not delay a cancel: a resume from the final state only re-runs this
    const v = await evaluateObjective(validation, all, plan.microBatchSize, plan.stopRequested);
    if (v === null) return stopped(plan, state);
    metrics.full_valid_loss = v.loss;
    if (v.metrics.mean_token_accuracy !== undefined)
      metrics.full_valid_mean_token_accuracy = v.metrics.mean_token_accuracy;
    metrics.extra = prefixed("full_valid_", v.metrics);
  }
  const trainedTokens = state.trainedTokens;
  return { status: "completed", step, totalSteps: plan.totalSteps, trainedTokens, metrics };
}

function prefixed(prefix: string, metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).map(([k, v]) => [`${prefix}${k}`, v]));
}
