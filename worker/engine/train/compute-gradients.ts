// The one gradient path: the gradients of one optimizer step, summed over its micro-batches.
// The training loop calls it for every step and the golden checks (scripts/golden) call it to
// compare against transformers + PEFT, so what the checks verify is what production trains with:
// the objective's loss (sft-objective.ts, dpo-objective.ts) through the model's lossTerms /
// sequenceLogprobs, with gradient checkpointing and the chunked LM-head loss as the model is set
// up, and gradient accumulation over micro-batches.
//
// Each micro-batch's loss share is normalised by the WHOLE step's counts (the objective's
// stepCounts), so the sum over micro-batches is the gradient of one big batch.

import * as tf from "@tensorflow/tfjs-core";
import { ensureGradientsRegistered } from "../backend/tfjs-gradients.js";
import { type ObjectiveBatch, sumCounts, type TrainObjective } from "./train-objective.js";

/** What the gradient path needs from a model; CausalLM has it. */
export interface GradientModel {
  /** the variables gradients are taken for, keyed by the name they are saved under */
  readonly trainableParams: Map<string, tf.Variable>;
}

export interface ComputeGradientsOptions {
  /** dropout on, and gradient checkpointing where the model enables it (default true) */
  training?: boolean;
  /**
   * Awaited before every micro-batch but the first: the loop serves timers there and returns
   * true to stop; the half-done step is then dropped (computeGradients returns null).
   */
  between?: () => Promise<boolean>;
}

export interface StepGradients {
  /** the step's loss (the sum of the micro-batches' shares); 0 when the step is empty */
  loss: tf.Scalar;
  /** the objective's statistics summed over the micro-batches; null when the step is empty */
  stats: tf.Tensor1D | null;
  /** Σ of the micro-batches' gradients, keyed as trainableParams; null when the step is empty */
  grads: tf.NamedTensorMap | null;
  /** the summed counts the shares were normalised by */
  stepCounts: number[];
}

/** Value and gradients (keyed by tf variable name) of one micro-batch's share of the step's loss. */
function microBatchGradients<B extends ObjectiveBatch>(
  objective: TrainObjective<B>,
  batch: B,
  stepCounts: readonly number[],
  variables: tf.Variable[],
  training: boolean,
): { value: tf.Scalar; stats: tf.Tensor1D; grads: tf.NamedTensorMap } {
  let stats: tf.Tensor1D | null = null;
  const { value, grads } = tf.variableGrads(() => {
    const r = objective.loss(batch, stepCounts, training);
    stats = tf.keep(r.stats);
    return r.loss;
  }, variables);
  return { value, stats: stats as unknown as tf.Tensor1D, grads };
}

/** a + b per key; disposes both. */
function addGradients(a: tf.NamedTensorMap, b: tf.NamedTensorMap): tf.NamedTensorMap {
  const summed: tf.NamedTensorMap = {};
  for (const key of Object.keys(a)) summed[key] = tf.add(a[key]!, b[key]!);
  tf.dispose([a, b]);
  return summed;
}

function byParamName(model: GradientModel, grads: tf.NamedTensorMap): tf.NamedTensorMap {
  const nameOf = new Map([...model.trainableParams].map(([name, v]) => [v.name, name]));
  const out: tf.NamedTensorMap = {};
  for (const [tfName, g] of Object.entries(grads)) out[nameOf.get(tfName) ?? tfName] = g;
  return out;
}

/**
 * The gradients of one optimizer step over `microBatches` (the objective's selections of the
 * step's examples). The caller disposes what is returned. Null when `between` asked to stop.
 */
export async function computeGradients<B extends ObjectiveBatch>(
  model: GradientModel,
  objective: TrainObjective<B>,
  microBatches: readonly B[],
  options: ComputeGradientsOptions = {},
): Promise<StepGradients | null> {
  ensureGradientsRegistered();
  const training = options.training ?? true;
  const stepCounts = sumCounts(microBatches);
  const variables = [...model.trainableParams.values()];
  if (variables.length === 0) throw new Error("computeGradients: the model has no trainable parameters");
  let grads: tf.NamedTensorMap | null = null;
  let loss: tf.Scalar = tf.scalar(0);
  let stats: tf.Tensor1D | null = null;
  if (objective.empty(stepCounts)) return { loss, stats, grads, stepCounts };
  for (const [i, batch] of microBatches.entries()) {
    if (i > 0 && options.between && (await options.between())) {
      tf.dispose([grads ?? {}, loss, stats ?? []]);
      return null;
    }
    const micro = microBatchGradients(objective, batch, stepCounts, variables, training);
    grads = grads === null ? micro.grads : addGradients(grads, micro.grads);
    const nextLoss = tf.add(loss, micro.value) as tf.Scalar;
    tf.dispose([loss, micro.value]);
    loss = nextLoss;
    if (stats === null) stats = micro.stats;
    else {
      const nextStats = tf.add(stats, micro.stats) as tf.Tensor1D;
      tf.dispose([stats, micro.stats]);
      stats = nextStats;
    }
  }
  return { loss, stats, grads: grads && byParamName(model, grads), stepCounts };
}
