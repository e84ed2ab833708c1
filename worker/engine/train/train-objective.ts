// What the training loop optimises, separated from how it steps: the loop orders examples, cuts
// steps into micro-batches, accumulates gradients, clips, schedules and checkpoints; an objective
// says what an example is (a packed row, a preference pair), how a micro-batch's loss is computed
// and which metrics it reports. Supervised fine-tuning and DPO are the two objectives.

import type * as tf from "@tensorflow/tfjs-core";

export interface ObjectiveBatch {
  /**
   * What this micro-batch adds to the step's normalisers (the objective decides their meaning:
   * label tokens for supervised training; pairs and chosen label tokens for DPO).
   */
  readonly counts: readonly number[];
  /** real (non-padding) tokens, for `trained_tokens` */
  readonly realTokens: number;
  /** label (scored) tokens */
  readonly labelTokens: number;
}

export interface TrainObjective<B extends ObjectiveBatch = ObjectiveBatch> {
  readonly kind: "objective";
  /** examples an epoch orders: rows (supervised) or pairs (DPO) */
  readonly size: number;
  select(indices: readonly number[]): B;
  /** true when a step with these summed counts has nothing to train */
  empty(stepCounts: readonly number[]): boolean;
  /**
   * This micro-batch's share of the step's loss (differentiable; normalised by the WHOLE step's
   * counts, so the shares add up to the step's loss whatever the micro-batch split) and its summed
   * statistics [k] (no gradient needed).
   */
  loss(batch: B, stepCounts: readonly number[], training: boolean): { loss: tf.Scalar; stats: tf.Tensor1D };
  /** named metrics (no train_/valid_ prefix) from a step's summed statistics and counts */
  metrics(stats: readonly number[], stepCounts: readonly number[]): Record<string, number>;
}

export function sumCounts(batches: readonly ObjectiveBatch[]): number[] {
  const total: number[] = [];
  for (const b of batches) {
    b.counts.forEach((c, i) => {
      total[i] = (total[i] ?? 0) + c;
    });
  }
  return total;
}
