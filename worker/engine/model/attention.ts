// LlamaAttention: q/k/v/o projections (LoRA-wrapped), RoPE, grouped-query attention with an
// explicit additive mask (causal, packed documents, sliding windows: attention-mask.ts), and the
// KV-cache paths of decoding (one sequence, or many rows of a batch, each against its own cache).
//
// GQA without copying K/V: the g = H / Hkv query heads that share a KV head are folded into the
// query length, so scores are one batched matmul over [B, Hkv, g·T, dh] × [B, Hkv, Tk, dh]ᵀ.
// The 1/√dh score scale is folded into the query's rope tables (rotary-embedding.ts).

import * as tf from "@tensorflow/tfjs-core";
import type { ModelConfig } from "../hf/config.js";
import type { LoraLinear } from "../lora/lora-layer.js";
import type { RowsPass } from "./cached-rows.js";
import { type CacheSlot, cacheSlot } from "./kv-cache.js";
import type { Project } from "./projection-pass.js";
import { applyRope } from "./rope.js";
import type { RopeTensors } from "./rotary-embedding.js";

export class Attention {
  constructor(
    private readonly config: ModelConfig,
    /** this layer's index (its entry in each KV cache) */
    readonly layerIndex: number,
    readonly q: LoraLinear,
    readonly k: LoraLinear,
    readonly v: LoraLinear,
    readonly o: LoraLinear,
  ) {}

  projections(): LoraLinear[] {
    return [this.q, this.k, this.v, this.o];
  }

  /**
   * x [B·T, D]; rope tables [B, T, 1, dh]; bias [B or 1, 1, T, Tk]. With `cache` (B = 1), the
   * keys and values attend after what it holds, and it is given the extended ones.
   */
  forward(
    x: tf.Tensor2D,
    B: number,
    T: number,
    rope: RopeTensors,
    bias: tf.Tensor,
    project: Project,
    cache?: CacheSlot,
  ): tf.Tensor2D {
    const q = project(x, this.q);
    const k = project(x, this.k);
    const v = project(x, this.v);
    return project(this.attend(q, k, v, B, T, rope, bias, cache), this.o);
  }

  /** The rows of a batched cached pass (cached-rows.ts): x [Σ new tokens, D] → [Σ new tokens, D]. */
  forwardRows(x: tf.Tensor2D, pass: RowsPass, project: Project): tf.Tensor2D {
    const { rows, spans, stepGroups, ropes } = pass;
    const i = this.layerIndex;
    const q = project(x, this.q);
    const k = project(x, this.k);
    const v = project(x, this.v);
    const part = (t: tf.Tensor2D, r: number) =>
      rows.length === 1 ? t : (tf.slice(t, [spans[r].start, 0], [spans[r].length, -1]) as tf.Tensor2D);
    // rows decoding one token at the same position share one attention (their caches stacked)
    const contexts: tf.Tensor2D[] = [];
    const order: number[] = [];
    for (const group of stepGroups) {
      if (group.length === 1) {
        const r = group[0];
        const [qr, kr, vr] = [part(q, r), part(k, r), part(v, r)];
        contexts.push(
          this.attend(
            qr,
            kr,
            vr,
            1,
            spans[r].length,
            ropes[r],
            pass.biasFor(r, i),
            cacheSlot(rows[r].cache, i),
          ),
        );
      } else {
        const pick = (t: tf.Tensor2D) => tf.gather(t, tf.tensor1d(group, "int32")) as tf.Tensor2D;
        const slots = group.map((r) => cacheSlot(rows[r].cache, i));
        contexts.push(
          this.cachedGroup(pick(q), pick(k), pick(v), ropes[group[0]], pass.biasFor(group[0], i), slots),
        );
      }
      order.push(...group);
    }
    let merged = contexts.length === 1 ? contexts[0] : (tf.concat(contexts, 0) as tf.Tensor2D);
    if (order.some((r, at) => r !== at)) {
      const inverse = new Int32Array(order.length);
      order.forEach((r, at) => {
        inverse[r] = at;
      });
      merged = tf.gather(merged, tf.tensor1d(inverse, "int32")) as tf.Tensor2D;
    }
    return project(merged, this.o);
  }

  /**
   * Attention of G rows that each feed one token at the same position, against their own caches
   * stacked into one batch: q/k/v [G, ·], rope and bias of that position; returns [G, H·dh].
   */
  private cachedGroup(
    qFlat: tf.Tensor2D,
    kFlat: tf.Tensor2D,
    vFlat: tf.Tensor2D,
    rope: RopeTensors,
    bias: tf.Tensor,
    caches: CacheSlot[],
  ): tf.Tensor2D {
    const { numHeads: H, numKvHeads: Hkv, headDim: dh } = this.config;
    const g = H / Hkv;
    const G = caches.length;
    const q = applyRope(tf.reshape(qFlat, [G, 1, H, dh]), rope.qCos, rope.qSin);
    const kNew = applyRope(tf.reshape(kFlat, [G, 1, Hkv, dh]), rope.cos, rope.sin);
    const vNew = tf.reshape(vFlat, [G, 1, Hkv, dh]) as tf.Tensor4D;
    const stacked = (past: tf.Tensor4D[], fresh: tf.Tensor4D) =>
      tf.concat([tf.concat(past, 0), tf.transpose(fresh, [0, 2, 1, 3])], 2) as tf.Tensor4D;
    const k = stacked(
      caches.map((c) => c.keys as tf.Tensor4D),
      kNew,
    );
    const v = stacked(
      caches.map((c) => c.values as tf.Tensor4D),
      vNew,
    );
    // slices along the batch axis are contiguous (cheap); tf.split copies slowly on wasm
    caches.forEach((c, r) => {
      c.store(tf.slice(k, [r, 0, 0, 0], [1, -1, -1, -1]), tf.slice(v, [r, 0, 0, 0], [1, -1, -1, -1]));
    });
    const Tk = k.shape[2];
    const qHeads = tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [G, Hkv, g, dh]);
    const scores = tf.matMul(qHeads, k, false, true);
    const masked = tf.add(tf.reshape(scores, [G, H, 1, Tk]), bias);
    const probs = tf.reshape(tf.softmax(masked), [G, Hkv, g, Tk]);
    const context = tf.reshape(tf.matMul(probs, v), [G, H, 1, dh]);
    return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [G, H * dh]) as tf.Tensor2D;
  }

  /**
   * Scaled dot-product attention of projected q/k/v [B·T, ·] → context [B·T, H·dh], after what
   * `cache` holds when given (and storing the extended keys and values in it).
   */
  private attend(
    qFlat: tf.Tensor2D,
    kFlat: tf.Tensor2D,
    vFlat: tf.Tensor2D,
    B: number,
    T: number,
    rope: RopeTensors,
    bias: tf.Tensor,
    cache?: CacheSlot,
  ): tf.Tensor2D {
    const { numHeads: H, numKvHeads: Hkv, headDim: dh } = this.config;
    const g = H / Hkv;
    const q = applyRope(tf.reshape(qFlat, [B, T, H, dh]), rope.qCos, rope.qSin);
    const kNew = applyRope(tf.reshape(kFlat, [B, T, Hkv, dh]), rope.cos, rope.sin);
    const vNew = tf.reshape(vFlat, [B, T, Hkv, dh]);
    let k = tf.transpose(kNew, [0, 2, 1, 3]) as tf.Tensor4D; // [B, Hkv, T, dh]
    let v = tf.transpose(vNew, [0, 2, 1, 3]) as tf.Tensor4D;
    if (cache) {
      if (cache.keys && cache.values) {
        k = tf.concat([cache.keys, k], 2);
        v = tf.concat([cache.values, v], 2);
      }
      cache.store(k, v);
    }
    const Tk = k.shape[2];
    const qHeads = tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [B, Hkv, g * T, dh]);
    const scores = tf.matMul(qHeads, k, false, true);
    const masked = tf.add(tf.reshape(scores, [B, H, T, Tk]), bias);
    const probs = tf.reshape(tf.softmax(masked), [B, Hkv, g * T, Tk]);
    const context = tf.reshape(tf.matMul(probs, v), [B, H, T, dh]);
    return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [B * T, H * dh]) as tf.Tensor2D;
  }
}
