import * as tf from "@tensorflow/tfjs-core";

/** RMSNorm over the last axis of x [N, D]: weight · x / sqrt(mean(x²) + eps), as LlamaRMSNorm. */
export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number): tf.Tensor2D {
  return tf.tidy(() => {
    const variance = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), weight);
  });
}

/** LlamaRMSNorm: a norm weight [D] and its epsilon. */
export class RMSNorm {
  constructor(
    readonly weight: tf.Tensor1D,
    readonly eps: number,
  ) {}

  forward(x: tf.Tensor2D): tf.Tensor2D {
    return rmsNorm(x, this.weight, this.eps);
  }
}
