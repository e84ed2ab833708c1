import * as tf from "@tensorflow/tfjs-core";

/**
 * fn(x) whose backward pass recomputes fn instead of keeping its intermediates: the forward
 * runs inside a custom-gradient kernel (tfjs frees everything the kernel made except its
 * output), only x is saved, and the gradient re-runs fn under tf.grads. `params` are the
 * trainable tensors fn reads (by closure) that need gradients; fn must be deterministic given
 * x (draw dropout seeds before, not inside).
 *
 * Gradient checkpointing per decoder layer: activations kept drop from every intermediate of
 * every layer to one [N, D] input per layer, for about one more forward pass of compute.
 */
export function checkpointed(
  fn: (x: tf.Tensor2D, constants: tf.Tensor[]) => tf.Tensor2D,
  x: tf.Tensor2D,
  constants: readonly tf.Tensor[],
  params: readonly tf.Tensor[],
): tf.Tensor2D {
  const run = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor2D;
    const save = args[args.length - 1] as tf.GradSaveFunc;
    // constants made in the caller's scope (rope tables, masks) may be freed before backward;
    // saving them keeps them alive for the recompute
    save([input, ...constants]);
    return {
      value: fn(input, [...constants]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ...cs] = saved;
        // tf.grads differentiates with respect to the very tensor objects fn reads, so the
        // parameters' gradients come out although fn reaches them by closure
        return withOwnTape(() =>
          tf.grads((...ts: tf.Tensor[]) => fn(ts[0] as tf.Tensor2D, cs))([xs, ...params], dy),
        );
      },
    };
  });
  return run(x, ...(params as tf.Tensor[])) as tf.Tensor2D;
}

/**
 * tfjs keeps one tape per process: a tf.grads called while the outer backward pass runs would
 * replace the outer tape and, when done, clear it (the outer pass then fails and leaks what its
 * nodes saved). So the outer tape is set aside for the recompute and put back after; the inner
 * tape frees what it saved as soon as its gradients are out, which is what keeps memory flat.
 */
function withOwnTape<T>(f: () => T): T {
  const state = (tf.engine() as unknown as { state: { activeTape: unknown; gradientDepth: number } }).state;
  const outerTape = state.activeTape;
  const outerDepth = state.gradientDepth;
  state.activeTape = null;
  state.gradientDepth = 0;
  try {
    return f();
  } finally {
    state.activeTape = outerTape;
    state.gradientDepth = outerDepth;
  }
}
