// LlamaModel: token embeddings → N × DecoderLayer → final RMSNorm, with the rotary embedding the
// layers share. It answers hidden states [B·T, D], the LM head's input; causal-lm.ts puts the
// head and the loss on top, cached-decoding.ts runs it against KV caches. Which adapter a pass
// applies and how it draws dropout seeds come with the pass (LayerPass), never from the model.
// One component per file, as transformers' modeling_llama.py has one class per component:
// rms-norm.ts, rotary-embedding.ts, attention.ts, mlp.ts, decoder-layer.ts; every projection is
// a LoraLinear (lora/lora-layer.ts). Activations are kept flat as [B·T, D] around every linear
// layer (linear.ts), and only attention reshapes to [B, H, T, dh].

import * as tf from "@tensorflow/tfjs-core";
import type { TokenBatch } from "../data/batch.js";
import type { ModelConfig } from "../hf/config.js";
import type { LoraAdapter } from "../lora/lora-adapter.js";
import { LoraLinear } from "../lora/lora-layer.js";
import type { LoraTargetModule } from "../lora/lora-targets.js";
import { Attention } from "./attention.js";
import { buildAttentionBias } from "./attention-mask.js";
import { DecoderLayer } from "./decoder-layer.js";
import { embed } from "./embedding.js";
import { checkpointed } from "./gradient-checkpoint.js";
import { cacheSlot, type KvCache } from "./kv-cache.js";
import { MLP } from "./mlp.js";
import type { Project } from "./projection-pass.js";
import { RMSNorm } from "./rms-norm.js";
import { type RopeTensors, RotaryEmbedding } from "./rotary-embedding.js";

/** How one pass runs the projections. */
export interface LayerPass {
  /** the adapter applied to every projection (null = base weights alone) */
  adapter: LoraAdapter | null;
  /** the dropout seed for `p` in this pass, or null for no dropout; drawn in projection order */
  dropoutSeed: (p: LoraLinear) => number | null;
  /** recompute each layer in the backward pass instead of keeping its activations */
  checkpoint: boolean;
}

/** The token ids of a pass, their positions, and the [B, T] they are laid out as. */
export interface PassTokens {
  ids: Int32Array;
  positionIds: Int32Array;
  B: number;
  T: number;
}

/** Base weights by HF state-dict name (model-weights.ts). */
export interface WeightSource {
  get(name: string): tf.Tensor | undefined;
}

/** A layer's attention bias by layer index. */
export type BiasFor = (layer: number) => tf.Tensor;

export class DecoderModel {
  readonly rotary: RotaryEmbedding;

  constructor(
    readonly config: ModelConfig,
    readonly embedTokens: tf.Tensor2D,
    readonly layers: readonly DecoderLayer[],
    readonly norm: RMSNorm,
    /** every weight is trained (the embedding table and norms included) */
    readonly fullFinetune: boolean,
  ) {
    this.rotary = new RotaryEmbedding(config);
  }

  /** The model over HF state-dict weights already on the device (they stay owned by the caller). */
  static fromWeights(config: ModelConfig, weights: WeightSource, fullFinetune: boolean): DecoderModel {
    const layers = Array.from({ length: config.numLayers }, (_, i) => buildLayer(config, weights, i));
    const norm = new RMSNorm(weights.get("model.norm.weight") as tf.Tensor1D, config.rmsNormEps);
    const embedTokens = weights.get("model.embed_tokens.weight") as tf.Tensor2D;
    return new DecoderModel(config, embedTokens, layers, norm, fullFinetune);
  }

  /** Every projection of every layer, in layer order. */
  projections(): LoraLinear[] {
    return this.layers.flatMap((l) => l.projections());
  }

  /** Token embeddings [N, D]; the table is trained only in full fine-tuning. */
  embed(ids: Int32Array): tf.Tensor2D {
    return tf.tidy(() => {
      const idTensor = tf.tensor1d(ids, "int32");
      return embed(idTensor, this.embedTokens, { trainable: this.fullFinetune });
    });
  }

  /**
   * The decoder stack up to the final norm [B·T, D] (or [1, D] with lastPositionOnly); with a
   * cache, the layers attend over it and extend it.
   */
  hiddenStates(
    tokens: PassTokens,
    biasFor: BiasFor,
    pass: LayerPass,
    cache?: KvCache,
    lastPositionOnly = false,
  ): tf.Tensor2D {
    const { B, T } = tokens;
    const rope = this.rotary.tables(tokens.positionIds, B, T);
    const project: Project = (x, p) => p.forward(x, pass.adapter, pass.dropoutSeed(p));
    let x = this.embed(tokens.ids);
    this.layers.forEach((layer, i) => {
      if (pass.checkpoint && !cache) {
        x = this.checkpointedLayer(layer, x, B, T, rope, biasFor(i), pass);
      } else {
        x = layer.forward(x, B, T, rope, biasFor(i), project, cache && cacheSlot(cache, i));
      }
    });
    // decoding needs only the next-token distribution: skip the [T, V] head for the prompt
    if (lastPositionOnly) x = tf.slice(x, [x.shape[0] - 1, 0], [1, -1]);
    return this.norm.forward(x);
  }

  /** One layer under gradient checkpointing: its dropout seeds are drawn ahead, so the recompute reuses them. */
  private checkpointedLayer(
    layer: DecoderLayer,
    x: tf.Tensor2D,
    B: number,
    T: number,
    rope: RopeTensors,
    bias: tf.Tensor,
    pass: LayerPass,
  ): tf.Tensor2D {
    const { adapter } = pass;
    const seeds = new Map(layer.projections().map((p) => [p.kind, pass.dropoutSeed(p)] as const));
    const project: Project = (input, p) => p.forward(input, adapter, seeds.get(p.kind) ?? null);
    return checkpointed(
      (input, [cos, sin, qCos, qSin, b]) =>
        layer.forward(input, B, T, { cos, sin, qCos, qSin } as RopeTensors, b, project),
      x,
      [rope.cos, rope.sin, rope.qCos, rope.qSin, bias],
      layer.trainables(this.fullFinetune, adapter),
    );
  }
}

/** Layer `i` over its weights; every projection is a LoraLinear. */
function buildLayer(config: ModelConfig, weights: WeightSource, i: number): DecoderLayer {
  const p = `model.layers.${i}`;
  const proj = (sub: string, kind: LoraTargetModule) =>
    new LoraLinear(
      `${p}.${sub}`,
      kind,
      weights.get(`${p}.${sub}.weight`) as tf.Tensor2D,
      weights.get(`${p}.${sub}.bias`) as tf.Tensor1D | undefined,
    );
  const norm = (name: string) =>
    new RMSNorm(weights.get(`${p}.${name}.weight`) as tf.Tensor1D, config.rmsNormEps);
  const attention = new Attention(
    config,
    i,
    proj("self_attn.q_proj", "q_proj"),
    proj("self_attn.k_proj", "k_proj"),
    proj("self_attn.v_proj", "v_proj"),
    proj("self_attn.o_proj", "o_proj"),
  );
  const mlp = new MLP(
    proj("mlp.gate_proj", "gate_proj"),
    proj("mlp.up_proj", "up_proj"),
    proj("mlp.down_proj", "down_proj"),
  );
  return new DecoderLayer(norm("input_layernorm"), attention, norm("post_attention_layernorm"), mlp);
}

/** One bias tensor per sliding-window size, made on first use (inside the caller's tidy). */
export function biasPerWindow(config: ModelConfig, make: (window: number | null) => tf.Tensor): BiasFor {
  const biases = new Map<number | null, tf.Tensor>();
  return (layer: number) => {
    const window = config.layerWindows[layer];
    let bias = biases.get(window);
    if (!bias) {
      bias = make(window);
      biases.set(window, bias);
    }
    return bias;
  };
}

/** A batch's tokens, checked against its shape. */
export function batchTokens(batch: TokenBatch): PassTokens {
  const { batchSize: B, seqLen: T } = batch;
  if (batch.inputIds.length !== B * T)
    throw new Error(`TokenBatch: inputIds has ${batch.inputIds.length} ids, expected ${B}×${T}`);
  return { ids: batch.inputIds, positionIds: batch.positionIds, B, T };
}

/** Each layer's attention bias [B, 1, T, T] for a batch (padding, packing, causal, window). */
export function batchAttentionBias(config: ModelConfig, batch: TokenBatch): BiasFor {
  const shape: [number, number, number, number] = [batch.batchSize, 1, batch.seqLen, batch.seqLen];
  return biasPerWindow(config, (window) => tf.tensor4d(buildAttentionBias(batch, window), shape));
}
