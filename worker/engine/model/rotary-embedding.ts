// LlamaRotaryEmbedding: the cos/sin tables of a pass's position ids, for the model's rope config
// (rope.ts computes them). The queries get their own copy pre-multiplied by 1/√dh, which folds
// attention's score scale into RoPE and saves a [B, H, T, Tk] multiply and its gradient.

import * as tf from "@tensorflow/tfjs-core";
import type { ModelConfig } from "../hf/config.js";
import { ropeInverseFrequencies, ropeTables } from "./rope.js";

export interface RopeTensors {
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
  /** cos and sin times 1/√dh, for the queries */
  qCos: tf.Tensor4D;
  qSin: tf.Tensor4D;
}

export class RotaryEmbedding {
  constructor(private readonly config: ModelConfig) {}

  /** cos/sin tensors [B, T, 1, dh] for the given position ids (and the query's, pre-scaled). */
  tables(positionIds: Int32Array, B: number, T: number): RopeTensors {
    let maxPos = 0;
    for (const p of positionIds) if (p > maxPos) maxPos = p;
    const invFreq = ropeInverseFrequencies(this.config.rope, this.config.headDim, maxPos + 1);
    const tables = ropeTables(invFreq, positionIds);
    const shape: [number, number, number, number] = [B, T, 1, this.config.headDim];
    const scale = 1 / Math.sqrt(this.config.headDim);
    return {
      cos: tf.tensor4d(tables.cos, shape),
      sin: tf.tensor4d(tables.sin, shape),
      qCos: tf.tensor4d(
        tables.cos.map((c) => c * scale),
        shape,
      ),
      qSin: tf.tensor4d(
        tables.sin.map((c) => c * scale),
        shape,
      ),
    };
  }
}
