// DPO as a training objective (train-objective.ts): an example is a preference pair; a step's
// loss is the mean DPO loss over its pairs (plus, with rpo_alpha, that weight times the mean NLL
// of the chosen answers' tokens, as TRL's rpo_alpha); its metrics are TRL's rewards/chosen,
// rewards/rejected, rewards/accuracies and rewards/margins.
//
// The chosen and the rejected answers of a micro-batch share one forward pass (rows [chosen…,
// rejected…]). The reference log-probabilities are computed once per pair before training
// (referenceLogprobs, the model with its adapter disabled, i.e. the starting weights) and cached:
// the reference never changes, so recomputing it every epoch would only cost time.

import * as tf from "@tensorflow/tfjs-core";
import type { TokenBatch } from "../data/batch.js";
import { collatePreferencePairs } from "../data/build-dataset.js";
import type { EncodedPreference } from "../data/encode-preference.js";
import { type DpoSettings, dpoPairTerms } from "./dpo-loss.js";
import { countLabelTokens, countRealTokens } from "./select-rows.js";
import type { ObjectiveBatch, TrainObjective } from "./train-objective.js";

/** What DPO needs from a model; CausalLM has it. */
export interface SequenceLogprobModel {
  sequenceLogprobs(batch: TokenBatch, options: { training?: boolean; disableAdapter?: boolean }): tf.Tensor1D;
}

export interface PairBatch extends ObjectiveBatch {
  batch: TokenBatch;
  /** reference log-probabilities in the batch's row order [chosen…, rejected…] */
  reference: Float32Array;
  /** label tokens per row, same order */
  lengths: Float32Array;
  pairs: number;
}

/** Label tokens of each row of a batch (labels[t], t ≥ 1, as the loss scores them). */
function rowLabelCounts(batch: TokenBatch): Float32Array {
  const out = new Float32Array(batch.batchSize);
  for (let b = 0; b < batch.batchSize; b++) {
    for (let t = 1; t < batch.seqLen; t++) if (batch.labels[b * batch.seqLen + t]! >= 0) out[b]!++;
  }
  return out;
}

/**
 * Sequence log-probabilities of every pair under the reference (the model with its adapter
 * disabled): [2·pairs] as (chosen, rejected) per pair. Call it before training starts, so a full
 * fine-tune's reference is its starting weights too.
 */
export async function referenceLogprobs(
  model: SequenceLogprobModel,
  pairs: readonly EncodedPreference[],
  padId: number,
  microBatchSize = 4,
): Promise<Float32Array> {
  const out = new Float32Array(2 * pairs.length);
  for (let i = 0; i < pairs.length; i += microBatchSize) {
    const part = pairs.slice(i, i + microBatchSize);
    const logps = model.sequenceLogprobs(collatePreferencePairs(part, padId), { disableAdapter: true });
    const values = await logps.data();
    logps.dispose();
    part.forEach((_, k) => {
      out[2 * (i + k)] = values[k]!;
      out[2 * (i + k) + 1] = values[part.length + k]!;
    });
    await new Promise((resolve) => setImmediate(resolve));
  }
  return out;
}

export const DPO_METRICS = ["rewards_chosen", "rewards_rejected", "rewards_accuracies", "rewards_margins"];

export function dpoObjective(
  model: SequenceLogprobModel,
  pairs: readonly EncodedPreference[],
  reference: Float32Array,
  settings: DpoSettings,
  padId: number,
): TrainObjective<PairBatch> {
  if (reference.length !== 2 * pairs.length)
    throw new Error(`dpoObjective: ${reference.length} reference log-probs for ${pairs.length} pairs`);
  const rpo = settings.rpoAlpha ?? 0;
  return {
    kind: "objective",
    size: pairs.length,
    select(indices) {
      const n = indices.length;
      const batch = collatePreferencePairs(
        indices.map((i) => pairs[i]!),
        padId,
      );
      const ref = new Float32Array(2 * n);
      indices.forEach((p, k) => {
        ref[k] = reference[2 * p]!;
        ref[n + k] = reference[2 * p + 1]!;
      });
      const lengths = rowLabelCounts(batch);
      let chosenTokens = 0;
      for (let k = 0; k < n; k++) chosenTokens += lengths[k]!;
      return {
        batch,
        reference: ref,
        lengths,
        pairs: n,
        counts: [n, chosenTokens],
        labelTokens: countLabelTokens(batch),
        realTokens: countRealTokens(batch),
      };
    },
    empty: (counts) => !(counts[0]! > 0),
    loss(b, counts, training) {
      return tf.tidy(() => {
        const policy = model.sequenceLogprobs(b.batch, { training });
        const terms = dpoPairTerms(policy, tf.tensor1d(b.reference), b.lengths, settings);
        let loss = tf.div(tf.sum(terms.losses), counts[0]!) as tf.Scalar;
        if (rpo > 0 && counts[1]! > 0) {
          const chosenNll = tf.neg(tf.sum(tf.slice(policy, 0, b.pairs)));
          loss = tf.add(loss, tf.mul(chosenNll, rpo / counts[1]!)) as tf.Scalar;
        }
        const c = terms.chosenRewards;
        const r = terms.rejectedRewards;
        const stats = tf.stack([
          tf.sum(c),
          tf.sum(r),
          tf.sum(tf.cast(tf.greater(c, r), "float32")),
          tf.sum(tf.sub(c, r)),
        ]) as tf.Tensor1D;
        return { loss, stats };
      });
    },
    metrics(stats, counts) {
      const n = counts[0] ?? 0;
      return Object.fromEntries(
        DPO_METRICS.map((name, i) => [name, n > 0 ? (stats[i] ?? Number.NaN) / n : 0]),
      );
    },
  };
}
