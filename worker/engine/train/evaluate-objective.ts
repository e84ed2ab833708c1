// Validation: an objective's loss and metrics over some of its examples, without gradients,
// normalised over all of them as one step (the same token-level mean training reports).

import * as tf from "@tensorflow/tfjs-core";
import type { TokenBatch } from "../data/batch.js";
import { sftObjective, type TokenLossModel } from "./sft-objective.js";
import { sumCounts, type TrainObjective } from "./train-objective.js";

export interface ObjectiveEvaluation {
  loss: number;
  metrics: Record<string, number>;
  labelTokens: number;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
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
): Promise<ObjectiveEvaluation | null> {
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

/** Loss and token accuracy of `rows` without gradients (validation); null when stopped midway. */
export async function evaluateRows(
  model: TokenLossModel,
  rows: TokenBatch,
  indices: readonly number[],
  microBatchSize: number,
  stopRequested?: () => Promise<boolean>,
): Promise<{ loss: number; accuracy: number; tokens: number } | null> {
  const r = await evaluateObjective(sftObjective(model, rows), indices, microBatchSize, stopRequested);
  if (r === null) return null;
  return { loss: r.loss, accuracy: r.metrics.mean_token_accuracy ?? Number.NaN, tokens: r.labelTokens };
}
