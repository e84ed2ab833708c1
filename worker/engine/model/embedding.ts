import * as tf from "@tensorflow/tfjs-core";

/**
 * Rows of an embedding table for token ids: ids [N] int32, table [V, D] → [N, D].
 *
 * A frozen table (LoRA) uses gather. A trainable table needs gather's gradient, which
 * tfjs builds from UnsortedSegmentSum — a kernel tfjs-backend-wasm does not have. On
 * wasm the trainable path therefore uses gather with a custom gradient made of
 * ScatterNd (which wasm has and which sums repeated ids): O(N·D), unlike the
 * oneHot(ids)·table product (O(N·V·D)), which stays available as embedOneHot.
 */
export function embed(ids: tf.Tensor1D, table: tf.Tensor2D, opts: { trainable: boolean }): tf.Tensor2D {
  checkInputs(ids, table);
  if (opts.trainable && tf.getBackend() === "wasm") return gatherWithScatterGrad(ids, table);
  return tf.gather(table, ids);
}

function checkInputs(ids: tf.Tensor, table: tf.Tensor): void {
  if (ids.rank !== 1 || ids.dtype !== "int32") {
    throw new Error(`embed: ids must be a 1-D int32 tensor, got ${ids.dtype} [${ids.shape}]`);
  }
  if (table.rank !== 2) throw new Error(`embed: table must be [vocab, dim], got [${table.shape}]`);
}

/** oneHot(ids) · table: differentiable on every backend, but costs N·V·D multiply-adds. */
export function embedOneHot(ids: tf.Tensor1D, table: tf.Tensor2D): tf.Tensor2D {
  checkInputs(ids, table);
  // Cast rather than oneHot(..., "float32"): tfjs-wasm 4.22 writes the int bits of 1
  // into a float32 oneHot (1.4e-45 instead of 1).
  return tf.tidy(() => tf.matMul(tf.cast(tf.oneHot(ids, table.shape[0]), "float32"), table));
}

/** gather(table, ids) whose table gradient is scatterND(ids, dy) — summing repeated ids. */
export function embedGatherScatterGrad(ids: tf.Tensor1D, table: tf.Tensor2D): tf.Tensor2D {
  checkInputs(ids, table);
  return gatherWithScatterGrad(ids, table);
}

function gatherWithScatterGrad(ids: tf.Tensor1D, table: tf.Tensor2D): tf.Tensor2D {
  const shape = table.shape;
  // customGrad differentiates only the table. The ids go through `save` so they outlive a
  // forward pass wrapped in tf.tidy until backprop runs (closing over them would not).
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const t = args[0] as tf.Tensor2D;
    (args[1] as tf.GradSaveFunc)([ids]);
    return {
      value: tf.gather(t, ids),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.scatterND(tf.expandDims(saved[0], 1), dy, shape),
    };
  });
  return f(table) as tf.Tensor2D;
}
