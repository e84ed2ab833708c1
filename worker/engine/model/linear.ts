import * as tf from "@tensorflow/tfjs-core";

/**
 * y = x · Wᵀ (+ b) for a 2-D activation x [N, in] and a weight in Hugging Face layout
 * W [out, in]. Every linear layer of the model goes through here so the backend work
 * (native matmul, explicit-transpose gradient) has one place to act.
 */
export function linear(x: tf.Tensor2D, weight: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor2D {
  const y = tf.matMul(x, weight, false, true);
  return bias ? tf.add(y, bias) : y;
}
