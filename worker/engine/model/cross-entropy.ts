// Next-token cross-entropy over label tokens, the Hugging Face way: labels are not pre-shifted,
// the logits at t are scored against labels[t + 1] within the same row, and -100 is ignored.
// The loss is returned as a SUM with its token COUNT, so a training loop can divide by the count
// of the whole effective batch under gradient accumulation (not a mean of means).

import * as tf from "@tensorflow/tfjs-core";
import { IGNORE_INDEX } from "../data/batch.js";

export interface ShiftedTargets {
  /** target id per position [B·T]; 0 where ignored (weight 0) */
  targets: Int32Array;
  /** 1 where the position is scored, else 0 */
  weights: Float32Array;
  count: number;
}

/** targets[b, t] = labels[b, t + 1]; the last position of each row is never scored. */
export function shiftLabels(
  labels: Int32Array,
  batchSize: number,
  seqLen: number,
  vocabSize: number,
): ShiftedTargets {
  const n = batchSize * seqLen;
  const targets = new Int32Array(n);
  const weights = new Float32Array(n);
  let count = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let t = 0; t < seqLen - 1; t++) {
      const label = labels[b * seqLen + t + 1];
      if (label === IGNORE_INDEX) continue;
      if (label < 0 || label >= vocabSize) {
        throw new Error(
          `label ${label} at row ${b}, position ${t + 1} is outside the vocabulary (0..${vocabSize - 1})`,
        );
      }
      targets[b * seqLen + t] = label;
      weights[b * seqLen + t] = 1;
      count++;
    }
  }
  return { targets, weights, count };
}

/**
 * Per-position weights · (logsumexp(logits) − logits[target]) [N], differentiable in `logits`
 * [N, V]. A custom gradient, (softmax − onehot) · weight · dy, avoids gather's gradient (missing
 * on wasm) and keeps memory at a few [N, V] buffers.
 */
export function tokenCrossEntropy(
  logits: tf.Tensor2D,
  targets: Int32Array,
  weights: Float32Array,
): tf.Tensor1D {
  const [n, vocab] = logits.shape;
  const flatIndex = new Int32Array(n);
  for (let i = 0; i < n; i++) flatIndex[i] = i * vocab + targets[i];
  const lossFn = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const z = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    const w = tf.tensor1d(weights);
    const lse = tf.logSumExp(z, 1);
    const picked = tf.gather(tf.reshape(z, [-1]), tf.tensor1d(flatIndex, "int32"));
    const value = tf.mul(tf.sub(lse, picked), w);
    save([z, w]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [zs, ws] = saved;
        const scale = tf.reshape(tf.mul(ws, dy), [-1, 1]);
        const onehot = tf.oneHot(tf.tensor1d(targets, "int32"), vocab);
        return [tf.mul(tf.sub(tf.softmax(zs), onehot), scale)];
      },
    };
  });
  return lossFn(logits) as tf.Tensor1D;
}

/** Σ over scored positions of the token cross-entropy (a scalar, differentiable). */
export function crossEntropySum(logits: tf.Tensor2D, targets: Int32Array, weights: Float32Array): tf.Scalar {
  return tf.tidy(() => tf.sum(tokenCrossEntropy(logits, targets, weights)));
}

/** How many scored positions have argmax(logits) = target (a scalar tensor, no gradient). */
export function correctCount(logits: tf.Tensor2D, targets: Int32Array, weights: Float32Array): tf.Scalar {
  return tf.tidy(() => {
    const hit = tf.cast(tf.equal(tf.argMax(logits, 1), tf.tensor1d(targets, "int32")), "float32");
    return tf.sum(tf.mul(hit, tf.tensor1d(weights)));
  });
}
