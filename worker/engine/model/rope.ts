// Rotary position embeddings, as transformers' modeling_rope_utils computes them: the inverse
// frequencies per rope type (default, linear, dynamic NTK, llama3), cos/sin tables for the
// batch's position ids, and the rotate-half application on [B, T, H, dh].

import * as tf from "@tensorflow/tfjs-core";
import type { RopeConfig } from "../hf/config.js";

const f = Math.fround;

/** inv_freq[i] = 1 / theta^(2i / dim) in float32, as torch computes it */
function defaultInverseFrequencies(theta: number, dim: number): Float32Array {
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) out[i] = f(1 / f(theta ** f((2 * i) / dim)));
  return out;
}

/**
 * Inverse frequencies [headDim / 2] for a rope config. `seqLen` (max position id + 1) only matters
 * for "dynamic", which rescales theta once the sequence is longer than the original context.
 */
export function ropeInverseFrequencies(rope: RopeConfig, headDim: number, seqLen: number): Float32Array {
  switch (rope.type) {
    case "default":
      return defaultInverseFrequencies(rope.theta, headDim);
    case "linear":
      return defaultInverseFrequencies(rope.theta, headDim).map((v) => f(v / rope.factor));
    case "dynamic": {
      if (seqLen <= rope.originalMaxPositionEmbeddings) return defaultInverseFrequencies(rope.theta, headDim);
      const base =
        rope.theta *
        ((rope.factor * seqLen) / rope.originalMaxPositionEmbeddings - (rope.factor - 1)) **
          (headDim / (headDim - 2));
      return defaultInverseFrequencies(base, headDim);
    }
    case "llama3": {
      const inv = defaultInverseFrequencies(rope.theta, headDim);
      const old = rope.originalMaxPositionEmbeddings;
      const lowFreqWavelen = old / rope.lowFreqFactor;
      const highFreqWavelen = old / rope.highFreqFactor;
      return inv.map((v) => {
        const wavelen = (2 * Math.PI) / v;
        if (wavelen > lowFreqWavelen) return f(v / rope.factor); // long wavelengths: divided
        if (wavelen < highFreqWavelen) return v; // short wavelengths: kept
        const smooth = (old / wavelen - rope.lowFreqFactor) / (rope.highFreqFactor - rope.lowFreqFactor);
        return f((1 - smooth) * (v / rope.factor) + smooth * v); // in between: interpolated
      });
    }
  }
}

/**
 * cos and sin tables [N, headDim] for N position ids: angle = pos · inv_freq, duplicated over both
 * halves of the head (transformers' `cat(freqs, freqs)`).
 */
export function ropeTables(
  invFreq: Float32Array,
  positionIds: ArrayLike<number>,
): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length;
  const dim = half * 2;
  const n = positionIds.length;
  const cos = new Float32Array(n * dim);
  const sin = new Float32Array(n * dim);
  for (let t = 0; t < n; t++) {
    const pos = positionIds[t];
    for (let i = 0; i < half; i++) {
      const angle = f(pos * invFreq[i]);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[t * dim + i] = c;
      cos[t * dim + half + i] = c;
      sin[t * dim + i] = s;
      sin[t * dim + half + i] = s;
    }
  }
  return { cos, sin };
}

/** x · cos + rotate_half(x) · sin, with x [B, T, H, dh] and cos/sin [B, T, 1, dh]. */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const rotated = tf.getBackend() === "wasm" ? rotateHalfByMatMul(x) : rotateHalfBySplit(x);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  });
}

/** rotate_half(x) = cat(-x2, x1) over the last axis, as transformers writes it. */
export function rotateHalfBySplit(x: tf.Tensor4D): tf.Tensor4D {
  const half = x.shape[3] / 2;
  const [x1, x2] = tf.split(x, [half, half], 3);
  return tf.concat([tf.neg(x2), x1], 3) as tf.Tensor4D;
}

/**
 * rotate_half(x) as x · R with R the signed half-swap [dh, dh]. tfjs-wasm's SplitV and
 * Concat on the last axis are slow (~4 ms per call on [8,128,4,64], ×4 per layer with
 * their gradients); one plain GEMM is faster. Bit-identical: each output is one
 * product ±1·x plus exact zeros (the sign of a zero result aside). The gradient is
 * dy · Rᵀ as a plain (untransposed) GEMM, fast with and without the native matmul.
 */
export function rotateHalfByMatMul(x: tf.Tensor4D): tf.Tensor4D {
  const dh = x.shape[3];
  return tf.reshape(rotateHalf2D(tf.reshape(x, [-1, dh])), x.shape);
}

/**
 * R [dh, dh] with x · R = cat(-x2, x1): out[j] = -x[j + half] and out[j + half] = x[j].
 * Rᵀ = -R, the inverse rotation, used by the gradient.
 */
function rotateHalfMatrix(dh: number, sign: 1 | -1): tf.Tensor2D {
  if (dh % 2 !== 0) throw new Error(`rope: head_dim must be even, got ${dh}`);
  const half = dh / 2;
  const r = new Float32Array(dh * dh);
  for (let j = 0; j < half; j++) {
    r[(j + half) * dh + j] = -sign;
    r[j * dh + (j + half)] = sign;
  }
  return tf.tensor2d(r, [dh, dh]);
}

const rotateHalf2D = tf.customGrad((x) => {
  const x2 = x as tf.Tensor2D;
  const dh = x2.shape[1];
  return {
    value: tf.matMul(x2, rotateHalfMatrix(dh, 1)),
    gradFunc: (dy: tf.Tensor) => tf.matMul(dy as tf.Tensor2D, rotateHalfMatrix(dh, -1)),
  };
}) as (x: tf.Tensor2D) => tf.Tensor2D;
