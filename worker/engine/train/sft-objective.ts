// Supervised fine-tuning as a training objective: an example is a (packed) row; a step's loss is
// the token-level mean cross-entropy over the label tokens of the whole step (not a mean of
// micro-batch means), and its metric is the share of label tokens the argmax predicts.

import * as tf from "@tensorflow/tfjs-core";
import type { TokenBatch } from "../data/batch.js";
import { countLabelTokens, countRealTokens, selectRows } from "./select-rows.js";
import type { ObjectiveBatch, TrainObjective } from "./train-objective.js";

/** What supervised training needs from a model; CausalLM has it. */
export interface TokenLossModel {
  lossTerms(batch: TokenBatch, options: { training?: boolean }): { lossSum: tf.Scalar; correct: tf.Scalar };
}

export interface RowBatch extends ObjectiveBatch {
  batch: TokenBatch;
}

export function sftObjective(model: TokenLossModel, rows: TokenBatch): TrainObjective<RowBatch> {
  return {
    kind: "objective",
    size: rows.batchSize,
    select(indices) {
      const batch = selectRows(rows, indices);
      const labelTokens = countLabelTokens(batch);
      return { batch, counts: [labelTokens], labelTokens, realTokens: countRealTokens(batch) };
    },
    empty: (counts) => !(counts[0]! > 0),
    loss(b, counts, training) {
      const terms = model.lossTerms(b.batch, { training });
      const loss = tf.div(terms.lossSum, counts[0]!) as tf.Scalar;
      const stats = tf.reshape(terms.correct, [1]) as tf.Tensor1D;
      return { loss, stats };
    },
    metrics: (stats, counts) => ({ mean_token_accuracy: counts[0]! > 0 ? stats[0]! / counts[0]! : 0 }),
  };
}
