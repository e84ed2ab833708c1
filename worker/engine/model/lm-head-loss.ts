import * as tf from "@tensorflow/tfjs-core";

export interface LmHeadLoss {
  /** Σ over scored positions of logsumexp(logits) − logits[target] (scalar, differentiable) */
  lossSum: tf.Scalar;
  /** scored positions where argmax(logits) = target (scalar, no gradient) */
  correct: tf.Scalar;
}

/**
 * The LM head and next-token cross-entropy together, a chunk of scored tokens at a time, so
 * the [tokens × vocab] logits and their gradient never exist at once: with a 151,936-token
 * vocabulary they would otherwise be the largest tensors of the step. Only scored positions
 * (weight 1) reach the head at all. The gradient recomputes each chunk's logits:
 *   dlogits = softmax − onehot(target), dhidden = dlogits · head, dhead = dlogitsᵀ · hidden.
 *
 * hidden [N, D] (the final norm's output), head [V, D]; `headTrainable` differentiates the head
 * too (full fine-tuning), otherwise it is read as a constant and costs no [V, D] gradient.
 */
export function lmHeadLoss(
  hidden: tf.Tensor2D,
  head: tf.Tensor2D,
  targets: Int32Array,
  weights: Float32Array,
  options: { chunkTokens: number; headTrainable: boolean },
): LmHeadLoss {
  const rows: number[] = [];
  for (let i = 0; i < weights.length; i++) if (weights[i] !== 0) rows.push(i);
  const [n, d] = hidden.shape;
  const vocab = head.shape[0];
  if (targets.length !== n || weights.length !== n) {
    throw new Error(`lmHeadLoss: ${targets.length} targets and ${weights.length} weights for ${n} positions`);
  }
  const chunk = Math.max(1, Math.floor(options.chunkTokens));
  const chunks: { index: Int32Array; target: Int32Array }[] = [];
  for (let start = 0; start < rows.length; start += chunk) {
    const index = Int32Array.from(rows.slice(start, start + chunk));
    chunks.push({ index, target: Int32Array.from(index, (i) => targets[i]) });
  }
  if (chunks.length === 0) {
    // nothing scored: a zero that still depends on hidden, so gradients come out as zeros
    return { lossSum: tf.mul(tf.sum(hidden), 0) as tf.Scalar, correct: tf.scalar(0) };
  }

  // The forward pass: loss and argmax hits per chunk, each chunk's logits freed before the next.
  // `correct` leaves the custom-gradient kernel through tf.keep (the kernel tidies the rest).
  let correct: tf.Scalar | null = null;
  const forward = (h: tf.Tensor2D, w: tf.Tensor2D): tf.Scalar => {
    let loss: tf.Tensor = tf.scalar(0);
    let hits: tf.Tensor = tf.scalar(0);
    for (const c of chunks) {
      const [nextLoss, nextHits] = tf.tidy(() => {
        const logits = tf.matMul(tf.gather(h, tf.tensor1d(c.index, "int32")), w, false, true);
        const flat = Int32Array.from(c.target, (t, i) => i * vocab + t);
        const picked = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(flat, "int32"));
        const hit = tf.cast(tf.equal(tf.argMax(logits, 1), tf.tensor1d(c.target, "int32")), "float32");
        return [tf.add(loss, tf.sum(tf.sub(tf.logSumExp(logits, 1), picked))), tf.add(hits, tf.sum(hit))];
      });
      loss.dispose();
      hits.dispose();
      loss = nextLoss;
      hits = nextHits;
    }
    correct = tf.keep(hits as tf.Scalar);
    return loss as tf.Scalar;
  };

  const backward = (
    dy: tf.Tensor,
    h: tf.Tensor2D,
    w: tf.Tensor2D,
  ): { dh: tf.Tensor2D; dw: tf.Tensor2D | null } => {
    let dh: tf.Tensor2D = tf.zeros([n, d]);
    let dw: tf.Tensor2D | null = options.headTrainable ? tf.zeros([vocab, d]) : null;
    for (const c of chunks) {
      const next: { dh: tf.Tensor2D; dw?: tf.Tensor2D } = tf.tidy(() => {
        const idx = tf.tensor1d(c.index, "int32");
        const hc = tf.gather(h, idx);
        const logits = tf.matMul(hc, w, false, true);
        const onehot = tf.cast(tf.oneHot(tf.tensor1d(c.target, "int32"), vocab), "float32");
        const dlogits = tf.mul(tf.sub(tf.softmax(logits), onehot), dy) as tf.Tensor2D;
        const dhc = tf.matMul(dlogits, w);
        const nextDh = tf.add(dh, tf.scatterND(tf.expandDims(idx, 1), dhc, [n, d])) as tf.Tensor2D;
        if (!dw) return { dh: nextDh };
        return { dh: nextDh, dw: tf.add(dw, tf.matMul(dlogits, hc, true, false)) as tf.Tensor2D };
      });
      dh.dispose();
      dw?.dispose();
      dh = next.dh;
      dw = next.dw ?? null;
    }
    return { dh, dw };
  };

  const f = options.headTrainable
    ? tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
        const [h, w] = args as [tf.Tensor2D, tf.Tensor2D];
        (args[2] as tf.GradSaveFunc)([h, w]);
        return {
          value: forward(h, w),
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
            const g = backward(dy, saved[0] as tf.Tensor2D, saved[1] as tf.Tensor2D);
            return [g.dh, g.dw as tf.Tensor2D];
          },
        };
      })
    : tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
        const h = args[0] as tf.Tensor2D;
        (args[1] as tf.GradSaveFunc)([h]);
        return {
          value: forward(h, head),
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [backward(dy, saved[0] as tf.Tensor2D, head).dh],
        };
      });
  const lossSum = (options.headTrainable ? f(hidden, head) : f(hidden)) as tf.Scalar;
  // tf.keep'd tensors escape every tidy for good: hand back an ordinary tensor in this scope
  const kept = correct as unknown as tf.Scalar;
  const out = tf.clone(kept);
  kept.dispose();
  return { lossSum, correct: out };
}
