import * as tf from "@tensorflow/tfjs-core";

/**
 * gather(table, ids) whose table gradient is scatterND(ids, dy) (repeated ids summed): works on
 * wasm, which lacks gather's own gradient kernel, and is O(N·D). The ids go through `save` so
 * they outlive the forward pass's tidy until backprop runs; embedding.ts's trainable path closes
 * over them instead, which fails once the forward is wrapped in tf.tidy as it is here.
 */
export function trainableGather(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const shape = table.shape;
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
