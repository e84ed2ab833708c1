// LlamaDecoderLayer: x + attention(RMSNorm(x)), then + MLP(RMSNorm(·)).

import * as tf from "@tensorflow/tfjs-core";
import type { LoraAdapter } from "../lora/lora-adapter.js";
import type { LoraLinear } from "../lora/lora-layer.js";
import type { Attention } from "./attention.js";
import type { RowsPass } from "./cached-rows.js";
import type { CacheSlot } from "./kv-cache.js";
import type { MLP } from "./mlp.js";
import type { Project } from "./projection-pass.js";
import type { RMSNorm } from "./rms-norm.js";
import type { RopeTensors } from "./rotary-embedding.js";

export class DecoderLayer {
  constructor(
    readonly inputNorm: RMSNorm,
    readonly attention: Attention,
    readonly postAttentionNorm: RMSNorm,
    readonly mlp: MLP,
  ) {}

  /** q, k, v, o, gate, up, down: the order passes run them in. */
  projections(): LoraLinear[] {
    return [...this.attention.projections(), ...this.mlp.projections()];
  }

  /**
   * The tensors of this layer that gradients are taken for: every weight under full fine-tuning,
   * else the pairs of `adapter` (none for the base model).
   */
  trainables(fullFinetune: boolean, adapter: LoraAdapter | null): tf.Tensor[] {
    const projections = this.projections();
    if (fullFinetune) {
      const out: tf.Tensor[] = [this.inputNorm.weight, this.postAttentionNorm.weight];
      for (const p of projections) out.push(p.weight, ...(p.bias ? [p.bias] : []));
      return out;
    }
    return projections.flatMap((p) => {
      const pair = p.pairOf(adapter);
      return pair ? [pair.a, pair.b] : [];
    });
  }

  /**
   * x [B·T, D] → [B·T, D]. Each half runs in its own tidy: under a gradient tape only what the
   * backward pass saved survives it, every other intermediate is freed at once. (Not while filling
   * a KV cache, whose new tensors the caller keeps.)
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
    const scope = cache
      ? <R>(f: () => R): R => f()
      : <R extends tf.TensorContainer>(f: () => R): R => tf.tidy(f);
    const afterAttention = scope(() => {
      const h = this.inputNorm.forward(x);
      return tf.add(x, this.attention.forward(h, B, T, rope, bias, project, cache)) as tf.Tensor2D;
    });
    return scope(() => {
      const h2 = this.postAttentionNorm.forward(afterAttention);
      return tf.add(afterAttention, this.mlp.forward(h2, project)) as tf.Tensor2D;
    });
  }

  /** The same layer over the rows of a batched cached pass (cached-rows.ts). */
  forwardRows(x: tf.Tensor2D, pass: RowsPass, project: Project): tf.Tensor2D {
    const h = this.inputNorm.forward(x);
    const afterAttention = tf.add(x, this.attention.forwardRows(h, pass, project)) as tf.Tensor2D;
    const h2 = this.postAttentionNorm.forward(afterAttention);
    return tf.add(afterAttention, this.mlp.forward(h2, project)) as tf.Tensor2D;
  }
}
