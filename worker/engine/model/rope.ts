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
    const half = x.shape[3] / 2;
    const [x1, x2] = tf.split(x, [half, half], 3);
    const rotated = tf.concat([tf.neg(x2), x1], 3);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  });
}
