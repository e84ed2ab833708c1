import * as tf from "@tensorflow/tfjs-core";

// Global L2-norm clipping, as torch.nn.utils.clip_grad_norm_: the norm is taken over all
// gradients together (not per tensor), and every gradient is scaled by
// min(1, maxNorm / (norm + 1e-6)). Runs on the device: no value is read back here, so a
// step still needs only one sync (the loss).

export const DEFAULT_MAX_GRAD_NORM = 1.0;

export interface ClippedGradients {
  grads: tf.NamedTensorMap;
  /** the global norm before clipping, a scalar */
  norm: tf.Scalar;
}

/** The global L2 norm of all tensors in `grads` (a new scalar tensor). */
export function globalNorm(grads: tf.NamedTensorMap): tf.Scalar {
  return tf.tidy(() => {
    const names = Object.keys(grads);
    if (names.length === 0) throw new Error("globalNorm: no gradients given");
    const squares = names.map((name) => tf.sum(tf.square(grads[name]!)));
    return tf.sqrt(tf.addN(squares)) as tf.Scalar;
  });
}

/** New, clipped gradients plus the pre-clip norm; the inputs are not disposed. */
export function clipGradNorm(grads: tf.NamedTensorMap, maxNorm = DEFAULT_MAX_GRAD_NORM): ClippedGradients {
  if (!(maxNorm > 0)) throw new RangeError(`max grad norm must be > 0, got ${maxNorm}`);
  return tf.tidy(() => {
    const norm = globalNorm(grads);
    const coef = tf.minimum(tf.scalar(1), tf.div(tf.scalar(maxNorm), tf.add(norm, tf.scalar(1e-6))));
    const clipped: tf.NamedTensorMap = {};
    for (const [name, g] of Object.entries(grads)) clipped[name] = tf.mul(g, coef);
    // tidy keeps tensors reachable from the returned object
    return { grads: clipped, norm } as unknown as tf.TensorContainerObject;
  }) as unknown as ClippedGradients;
}
