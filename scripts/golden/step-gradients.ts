// The training loop's gradients for one optimizer step, as the golden checks take them.
import * as tf from "@tensorflow/tfjs-core";
import type { CausalLM } from "../../worker/engine/model/causal-lm.js";
import { computeGradients, type StepGradients } from "../../worker/engine/train/compute-gradients.js";
import type { ObjectiveBatch, TrainObjective } from "../../worker/engine/train/train-objective.js";

/** The training loop's gradients for one step over `microBatches` (dropout as in training). */
export async function stepGradients<B extends ObjectiveBatch>(
  model: CausalLM,
  objective: TrainObjective<B>,
  microBatches: B[],
): Promise<StepGradients> {
  return (await computeGradients(model, objective, microBatches, { training: true }))!;
}

export function disposeStep(step: StepGradients): void {
  tf.dispose([step.loss, step.stats ?? [], step.grads ?? {}]);
}
