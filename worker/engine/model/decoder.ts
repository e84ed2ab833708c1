// The LLaMA-family decoder (Llama 1–3.x, Mistral, Qwen2) in tfjs-core ops, float32, read like
// transformers' modeling_llama.py: embed → N × [RMSNorm → attention (RoPE, GQA, explicit mask) →
// residual → RMSNorm → SwiGLU MLP → residual] → RMSNorm → LM head.
//
// Model API (what the training loop, evaluation and chat completions use):
//
//   const model = await loadModel(folder, { lora: { r: 8, alpha: 16, dropout: 0.05 }, seed: 1 });
//   model.config                       parsed ModelConfig (hf/config.ts)
//   model.forward(batch, opts?)        logits [B·T, V] for a TokenBatch (data/batch.ts)
//   model.lossTerms(batch, opts?)      { lossSum, correct } scalars + tokenCount, differentiable
//   model.lossAndGrads(batch, { normalizer, training })
//                                      value and gradients of lossSum / normalizer for every
//                                      trainable parameter, keyed by parameter name
//   model.evaluate(batch)              { lossSum, tokenCount, correct } as numbers, no gradients
//   model.sequenceLogprobs(batch, opts?)  Σ log p(label) per row [B] (DPO; disableAdapter = reference)
//   model.trainableParams              Map<name, tf.Variable>: PEFT tensor names
//                                      (base_model.model.…lora_A.weight) for LoRA, HF state-dict
//                                      names for full fine-tuning
//   model.rngState() / setRngState()   the dropout RNG, for checkpoints
//   model.saveAdapter(dir) / loadAdapter(dir)   PEFT layout (model/adapter-io.ts)
//   model.saveFullModel(dir)           model.safetensors + config for full fine-tuning
//   model.newCache() / forwardCached(ids, cache) / disposeCache(cache)   KV-cache decoding:
//                                      next-token logits [1, V] (generate.ts builds on it)
//   model.forwardCachedRows(rows)      one forward for many sequences, each with its own cache and
//                                      LoRA adapter: next-token logits [rows, V] (batched decoding)
//   model.dispose()
//
// Shapes: activations are kept flat as [B·T, D] around every linear layer (linear.ts), and only
// attention reshapes to [B, H, T, dh]. Base weights are plain tensors (frozen); only LoRA pairs,
// or every weight under full fine-tuning, are tf.Variables.

import { readFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { ensureGradientsRegistered } from "../backend/tfjs-gradients.js";
import type { TokenBatch } from "../data/batch.js";
import { expectedWeightShapes } from "../hf/checkpoint-layout.js";
import type { ModelConfig } from "../hf/config.js";
import { parseModelConfig } from "../hf/config.js";
import { readModelWeights } from "../hf/model-folder.js";
import type { FloatTensorData } from "../hf/safetensors.js";
import {
  initLoraPair,
  type LoraOptions,
  type LoraPair,
  type LoraSettings,
  type LoraTargetModule,
  loraLinear,
  resolveLoraSettings,
  uniqueVariableName,
} from "../lora/lora.js";
import { lmHeadChunkTokens } from "../train/memory-estimate.js";
import { Rng, type RngState } from "../train/rng.js";
import { buildAttentionBias, buildCachedAttentionBias } from "./attention-mask.js";
import { shiftLabels, tokenCrossEntropy } from "./cross-entropy.js";
import { embed } from "./embedding.js";
import { checkpointed } from "./gradient-checkpoint.js";
import { linear } from "./linear.js";
import { lmHeadLoss } from "./lm-head-loss.js";
import { rmsNorm } from "./rms-norm.js";
import { applyRope, ropeInverseFrequencies, ropeTables } from "./rope.js";

export interface LoadModelOptions {
  /** default "config.json" (e.g. "config.legacy.json" to load the transformers-4 layout) */
  configFile?: string;
  /** default: model.safetensors.index.json, else model.safetensors */
  weightsFile?: string;
  /** new LoRA adapter (B = 0); ignored when adapterDir is given */
  lora?: LoraOptions | null;
  /** load an existing PEFT adapter (its adapter_config.json decides rank, alpha, targets) */
  adapterDir?: string;
  /** every base weight becomes a trainable variable */
  fullFinetune?: boolean;
  /** seeds LoRA initialisation and the dropout stream (default 0) */
  seed?: number;
}

export interface ForwardOptions {
  /** apply LoRA dropout (default false) */
  training?: boolean;
  /** run the base model only, as DPO's reference model does (default false) */
  disableAdapter?: boolean;
}

export interface LossTerms {
  /** Σ token cross-entropy over label tokens (scalar, differentiable) */
  lossSum: tf.Scalar;
  /** number of label tokens scored */
  tokenCount: number;
  /** label tokens where argmax(logits) = label (scalar, no gradient) */
  correct: tf.Scalar;
}

/** A LoRA adapter held apart from the model (serving): its settings and a pair per adapted projection. */
export interface RowAdapter {
  settings: LoraSettings;
  /** projection module path (model.layers.0.self_attn.q_proj) → its pair */
  pairs: ReadonlyMap<string, LoraPair>;
}

/** One sequence of a batched cached forward. */
export interface CachedRow {
  /** the new tokens of this sequence (the prompt at prefill, one token per decoding step) */
  ids: ArrayLike<number>;
  cache: KvCache;
  /** the adapter for this row; null = the base weights alone (pairs attached to the model are not used) */
  adapter: RowAdapter | null;
}

export interface KvCache {
  keys: tf.Tensor4D[]; // per layer [1, Hkv, length, dh], RoPE applied
  values: tf.Tensor4D[];
  length: number;
}

/** One linear layer: base weight [out, in] in HF layout, optional bias, optional LoRA pair. */
interface Projection {
  /** module path, e.g. model.layers.0.self_attn.q_proj */
  name: string;
  kind: LoraTargetModule;
  weight: tf.Tensor2D;
  bias?: tf.Tensor1D;
  lora?: LoraPair;
}

interface RopeTensors {
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
  /** cos and sin times 1/√dh, for the queries */
  qCos: tf.Tensor4D;
  qSin: tf.Tensor4D;
}

interface DecoderLayer {
  inputNorm: tf.Tensor1D;
  postAttentionNorm: tf.Tensor1D;
  q: Projection;
  k: Projection;
  v: Projection;
  o: Projection;
  gate: Projection;
  up: Projection;
  down: Projection;
}

// re-exported: callers that build models (bench, tests) know it from here
export { expectedWeightShapes };

/** PEFT's tensor name for one side of a LoRA pair. */
export function peftTensorName(moduleName: string, side: "A" | "B"): string {
  return `base_model.model.${moduleName}.lora_${side}.weight`;
}

/** Two independent streams from one seed, so LoRA's init and dropout masks never share draws. */
function seedStreams(seed: number): { loraInit: Rng; dropout: Rng } {
  const root = Rng.fromSeed(seed);
  return { loraInit: Rng.fromSeed(root.nextSeed()), dropout: Rng.fromSeed(root.nextSeed()) };
}

export class CausalLM {
  readonly config: ModelConfig;
  /** the folder it was loaded from and its raw config.json (for saving full models) */
  readonly folder: string;
  readonly rawConfig: Record<string, unknown>;
  readonly fullFinetune: boolean;
  loraSettings: LoraSettings | null = null;
  /** trainable parameters by name; the loop takes gradients for exactly these */
  readonly trainableParams = new Map<string, tf.Variable>();

  private weights = new Map<string, tf.Tensor>();
  private layers: DecoderLayer[] = [];
  private embedTokens!: tf.Tensor2D;
  private finalNorm!: tf.Tensor1D;
  private lmHead!: tf.Tensor2D;
  private rng: Rng;
  private seed: number;
  private disposed = false;
  /** dropout seeds drawn ahead for a checkpointed layer (its recompute must reuse them) */
  private pendingSeeds: Map<LoraTargetModule, number | null> | null = null;

  /**
   * Recompute each decoder layer in the backward pass instead of keeping its activations
   * (training only; same losses and gradients, about a third more compute).
   */
  gradientCheckpointing = false;
  /** scored tokens per LM-head chunk in training and evaluation (the logits never exceed it × vocab) */
  lmHeadChunkTokens: number;

  /** Builds the model from host weights; entries are removed from `weights` as they are uploaded. */
  constructor(
    config: ModelConfig,
    weights: Map<string, FloatTensorData>,
    options: { folder: string; rawConfig: Record<string, unknown>; fullFinetune?: boolean; seed?: number },
  ) {
    this.config = config;
    this.folder = options.folder;
    this.rawConfig = options.rawConfig;
    this.fullFinetune = options.fullFinetune === true;
    this.seed = options.seed ?? 0;
    this.rng = seedStreams(this.seed).dropout;
    this.lmHeadChunkTokens = lmHeadChunkTokens(config.vocabSize);
    const shapes = expectedWeightShapes(config);
    for (const [name, shape] of shapes) {
      const t = weights.get(name);
      if (!t) throw new Error(`${this.folder}: missing weight "${name}" (expected shape [${shape}])`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new Error(
          `${this.folder}: weight "${name}" has shape [${t.shape}], config.json implies [${shape}]`,
        );
      }
      const tensor = tf.tensor(t.data, shape, "float32");
      weights.delete(name); // release the host copy as soon as the device holds it
      if (this.fullFinetune) {
        const variable = tf.variable(tensor, true, uniqueVariableName(name));
        tensor.dispose();
        this.weights.set(name, variable);
        this.trainableParams.set(name, variable);
      } else {
        this.weights.set(name, tensor);
      }
    }
    this.embedTokens = this.weights.get("model.embed_tokens.weight") as tf.Tensor2D;
    this.finalNorm = this.weights.get("model.norm.weight") as tf.Tensor1D;
    this.lmHead = (
      config.tieWordEmbeddings ? this.embedTokens : this.weights.get("lm_head.weight")
    ) as tf.Tensor2D;
    for (let i = 0; i < config.numLayers; i++) {
      const p = `model.layers.${i}`;
      const proj = (sub: string, kind: LoraTargetModule): Projection => ({
        name: `${p}.${sub}`,
        kind,
        weight: this.weights.get(`${p}.${sub}.weight`) as tf.Tensor2D,
        bias: this.weights.get(`${p}.${sub}.bias`) as tf.Tensor1D | undefined,
      });
      this.layers.push({
        inputNorm: this.weights.get(`${p}.input_layernorm.weight`) as tf.Tensor1D,
        postAttentionNorm: this.weights.get(`${p}.post_attention_layernorm.weight`) as tf.Tensor1D,
        q: proj("self_attn.q_proj", "q_proj"),
        k: proj("self_attn.k_proj", "k_proj"),
        v: proj("self_attn.v_proj", "v_proj"),
        o: proj("self_attn.o_proj", "o_proj"),
        gate: proj("mlp.gate_proj", "gate_proj"),
        up: proj("mlp.up_proj", "up_proj"),
        down: proj("mlp.down_proj", "down_proj"),
      });
    }
  }

  /** Every projection of every layer, in layer order. */
  projections(): Projection[] {
    return this.layers.flatMap((l) => [l.q, l.k, l.v, l.o, l.gate, l.up, l.down]);
  }

  /** Unique parameter count (tied weights once), LoRA excluded. */
  numBaseParameters(): number {
    let n = 0;
    for (const t of this.weights.values()) n += t.size;
    return n;
  }

  // ---------------------------------------------------------------------------------- LoRA

  /**
   * Attach fresh LoRA pairs (A kaiming-uniform from the model's seed, B = 0) to the target
   * modules, replacing any adapter already attached. Not combinable with full fine-tuning.
   */
  attachLora(options: LoraOptions): LoraSettings {
    if (this.fullFinetune)
      throw new Error("LoRA and full fine-tuning are exclusive: load the model without fullFinetune");
    this.detachLora();
    const settings = resolveLoraSettings(options);
    const initRng = seedStreams(options.seed ?? this.seed).loraInit;
    for (const p of this.projections()) {
      if (!settings.targetModules.includes(p.kind)) continue;
      const [out, inF] = p.weight.shape;
      p.lora = initLoraPair(inF, out, settings.r, initRng, p.name);
      this.trainableParams.set(peftTensorName(p.name, "A"), p.lora.a);
      this.trainableParams.set(peftTensorName(p.name, "B"), p.lora.b);
    }
    this.loraSettings = settings;
    return settings;
  }

  /** Remove and free the adapter (the base model is untouched). */
  detachLora(): void {
    for (const p of this.projections()) {
      if (!p.lora) continue;
      p.lora.a.dispose();
      p.lora.b.dispose();
      p.lora = undefined;
    }
    if (!this.fullFinetune) this.trainableParams.clear();
    this.loraSettings = null;
  }

  /** The projection a PEFT module path names, e.g. "model.layers.0.self_attn.q_proj". */
  projectionByName(moduleName: string): Projection | undefined {
    return this.projections().find((p) => p.name === moduleName);
  }

  // ------------------------------------------------------------------------------ forward

  rngState(): RngState {
    return this.rng.state();
  }

  setRngState(state: RngState): void {
    this.rng = Rng.fromState(state);
  }

  /** Token embeddings [N, D]; the table is trained only in full fine-tuning. */
  private embed(ids: Int32Array): tf.Tensor2D {
    return tf.tidy(() => {
      const idTensor = tf.tensor1d(ids, "int32");
      return embed(idTensor, this.embedTokens, { trainable: this.fullFinetune });
    });
  }

  private project(x: tf.Tensor2D, p: Projection, options: ForwardOptions): tf.Tensor2D {
    const lora = options.disableAdapter ? undefined : p.lora;
    const dropoutSeed = this.pendingSeeds
      ? (this.pendingSeeds.get(p.kind) ?? null)
      : this.drawDropoutSeed(p, options);
    return loraLinear(x, p.weight, p.bias, lora, this.loraSettings, dropoutSeed);
  }

  private drawDropoutSeed(p: Projection, options: ForwardOptions): number | null {
    const lora = options.disableAdapter ? undefined : p.lora;
    return options.training && lora && (this.loraSettings?.dropout ?? 0) > 0 ? this.rng.nextSeed() : null;
  }

  /** The tensors of one layer that gradients are taken for (LoRA pairs, or every weight). */
  private layerTrainables(layer: DecoderLayer, options: ForwardOptions): tf.Tensor[] {
    const projections = [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down];
    if (this.fullFinetune) {
      const out: tf.Tensor[] = [layer.inputNorm, layer.postAttentionNorm];
      for (const p of projections) out.push(p.weight, ...(p.bias ? [p.bias] : []));
      return out;
    }
    if (options.disableAdapter) return [];
    return projections.flatMap((p) => (p.lora ? [p.lora.a, p.lora.b] : []));
  }

  /**
   * Attention for one layer. x [B·T, D]; rope tables [B, T, 1, dh]; bias [B or 1, 1, T, Tk].
   * The 1/√dh score scale is folded into the query's rope tables (rope.qCos/qSin), which saves
   * a [B, H, T, Tk] multiply and its gradient.
   * GQA without copying K/V: the g = H / Hkv query heads that share a KV head are folded into
   * the query length, so scores are one batched matmul over [B, Hkv, g·T, dh] × [B, Hkv, Tk, dh]ᵀ.
   */
  private attention(
    x: tf.Tensor2D,
    layer: DecoderLayer,
    B: number,
    T: number,
    rope: RopeTensors,
    bias: tf.Tensor,
    options: ForwardOptions,
    cache?: {
      keys: tf.Tensor4D | null;
      values: tf.Tensor4D | null;
      store: (k: tf.Tensor4D, v: tf.Tensor4D) => void;
    },
  ): tf.Tensor2D {
    const { numHeads: H, numKvHeads: Hkv, headDim: dh } = this.config;
    const g = H / Hkv;
    const q = applyRope(tf.reshape(this.project(x, layer.q, options), [B, T, H, dh]), rope.qCos, rope.qSin);
    const kNew = applyRope(
      tf.reshape(this.project(x, layer.k, options), [B, T, Hkv, dh]),
      rope.cos,
      rope.sin,
    );
    const vNew = tf.reshape(this.project(x, layer.v, options), [B, T, Hkv, dh]);
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
    const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [B * T, H * dh]) as tf.Tensor2D;
    return this.project(merged, layer.o, options);
  }

  private mlp(x: tf.Tensor2D, layer: DecoderLayer, options: ForwardOptions): tf.Tensor2D {
    const gate = this.project(x, layer.gate, options);
    const up = this.project(x, layer.up, options);
    const silu = tf.mul(gate, tf.sigmoid(gate));
    return this.project(tf.mul(silu, up) as tf.Tensor2D, layer.down, options);
  }

  /** cos/sin tensors [B, T, 1, dh] for the given position ids (and the query's, pre-scaled). */
  private rope(positionIds: Int32Array, B: number, T: number): RopeTensors {
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

  /** The decoder stack on flat ids; `biasFor(layerIndex)` gives that layer's attention bias. */
  private run(
    ids: Int32Array,
    positionIds: Int32Array,
    B: number,
    T: number,
    biasFor: (layer: number) => tf.Tensor,
    options: ForwardOptions,
    cache?: KvCache,
    lastPositionOnly = false,
  ): tf.Tensor2D {
    const normed = this.hiddenStates(ids, positionIds, B, T, biasFor, options, cache, lastPositionOnly);
    return linear(normed, this.lmHead);
  }

  /** The decoder stack up to the final norm [B·T, D] (or [1, D] with lastPositionOnly). */
  private hiddenStates(
    ids: Int32Array,
    positionIds: Int32Array,
    B: number,
    T: number,
    biasFor: (layer: number) => tf.Tensor,
    options: ForwardOptions & { checkpoint?: boolean },
    cache?: KvCache,
    lastPositionOnly = false,
  ): tf.Tensor2D {
    const rope = this.rope(positionIds, B, T);
    let x = this.embed(ids);
    this.layers.forEach((layer, i) => {
      const cacheSlot = cache && {
        keys: cache.keys[i] ?? null,
        values: cache.values[i] ?? null,
        store: (k: tf.Tensor4D, v: tf.Tensor4D) => {
          cache.keys[i] = k;
          cache.values[i] = v;
        },
      };
      // Each block runs in its own tidy: under a gradient tape only what the backward pass
      // saved survives it, every other intermediate is freed at once. (Not while filling a KV
      // cache, whose new tensors the caller keeps.)
      const scope = cache
        ? <T>(f: () => T): T => f()
        : <T extends tf.TensorContainer>(f: () => T): T => tf.tidy(f);
      const block = (input: tf.Tensor2D, r: RopeTensors, bias: tf.Tensor): tf.Tensor2D => {
        const afterAttention = scope(() => {
          const h = rmsNorm(input, layer.inputNorm, this.config.rmsNormEps);
          return tf.add(input, this.attention(h, layer, B, T, r, bias, options, cacheSlot)) as tf.Tensor2D;
        });
        return scope(() => {
          const h2 = rmsNorm(afterAttention, layer.postAttentionNorm, this.config.rmsNormEps);
          return tf.add(afterAttention, this.mlp(h2, layer, options)) as tf.Tensor2D;
        });
      };
      if (options.checkpoint && !cache) {
        const projections = [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down];
        const seeds = new Map(projections.map((p) => [p.kind, this.drawDropoutSeed(p, options)] as const));
        x = checkpointed(
          (input, [cos, sin, qCos, qSin, bias]) => {
            this.pendingSeeds = seeds;
            try {
              return block(input, { cos, sin, qCos, qSin } as RopeTensors, bias);
            } finally {
              this.pendingSeeds = null;
            }
          },
          x,
          [rope.cos, rope.sin, rope.qCos, rope.qSin, biasFor(i)],
          this.layerTrainables(layer, options),
        );
      } else {
        x = block(x, rope, biasFor(i));
      }
    });
    // decoding needs only the next-token distribution: skip the [T, V] head for the prompt
    if (lastPositionOnly) x = tf.slice(x, [x.shape[0] - 1, 0], [1, -1]);
    return rmsNorm(x, this.finalNorm, this.config.rmsNormEps);
  }

  /** Final hidden states [B·T, D] for a batch (the LM head's input). */
  private hiddenForBatch(batch: TokenBatch, options: ForwardOptions & { checkpoint?: boolean }): tf.Tensor2D {
    const biasFor = this.batchAttentionBias(batch);
    return this.hiddenStates(
      batch.inputIds,
      batch.positionIds,
      batch.batchSize,
      batch.seqLen,
      biasFor,
      options,
    );
  }

  /** Checks a batch's shape; answers each layer's attention bias, built once per window size. */
  private batchAttentionBias(batch: TokenBatch): (layer: number) => tf.Tensor {
    this.assertUsable();
    const { batchSize: B, seqLen: T } = batch;
    if (batch.inputIds.length !== B * T)
      throw new Error(`TokenBatch: inputIds has ${batch.inputIds.length} ids, expected ${B}×${T}`);
    const biases = new Map<number | null, tf.Tensor>();
    return (layer: number) => {
      const window = this.config.layerWindows[layer];
      let bias = biases.get(window);
      if (!bias) {
        bias = tf.tensor4d(buildAttentionBias(batch, window), [B, 1, T, T]);
        biases.set(window, bias);
      }
      return bias;
    };
  }

  /** Loss sum and argmax hits through the chunked LM head (never the whole [B·T, V] logits). */
  private chunkedLoss(
    batch: TokenBatch,
    shifted: { targets: Int32Array; weights: Float32Array },
    options: ForwardOptions & { checkpoint?: boolean },
  ): { lossSum: tf.Scalar; correct: tf.Scalar } {
    const hidden = this.hiddenForBatch(batch, options);
    return lmHeadLoss(hidden, this.lmHead, shifted.targets, shifted.weights, {
      chunkTokens: this.lmHeadChunkTokens,
      headTrainable: this.fullFinetune,
    });
  }

  /** Logits [B·T, V] for a batch; logits at t predict the token at t + 1. */
  forward(batch: TokenBatch, options: ForwardOptions = {}): tf.Tensor2D {
    const biasFor = this.batchAttentionBias(batch);
    // the biases are made lazily inside the tidy, so it frees them with the activations
    return tf.tidy(() =>
      this.run(batch.inputIds, batch.positionIds, batch.batchSize, batch.seqLen, biasFor, options),
    );
  }

  /** Loss terms for a batch. Call inside tf.variableGrads / tf.grads to differentiate lossSum. */
  lossTerms(batch: TokenBatch, options: ForwardOptions = {}): LossTerms {
    const shifted = shiftLabels(batch.labels, batch.batchSize, batch.seqLen, this.config.vocabSize);
    const checkpoint = options.training === true && this.gradientCheckpointing;
    const [lossSum, correct] = tf.tidy(() => {
      const r = this.chunkedLoss(batch, shifted, { ...options, checkpoint });
      return [r.lossSum, r.correct];
    });
    return { lossSum, correct, tokenCount: shifted.count };
  }

  /**
   * log π(labels | context) summed over each row's label tokens [B], differentiable: the
   * sequence log-probabilities a DPO loss compares (use padded rows, one example per row; pass
   * `disableAdapter` for the reference model).
   */
  sequenceLogprobs(batch: TokenBatch, options: ForwardOptions = {}): tf.Tensor1D {
    const shifted = shiftLabels(batch.labels, batch.batchSize, batch.seqLen, this.config.vocabSize);
    return tf.tidy(() => {
      const perToken = tokenCrossEntropy(this.forward(batch, options), shifted.targets, shifted.weights);
      return tf.neg(tf.sum(tf.reshape(perToken, [batch.batchSize, batch.seqLen]), 1)) as tf.Tensor1D;
    });
  }

  /**
   * Gradients of lossSum / normalizer for every trainable parameter (keys as trainableParams).
   * Pass the label-token count of the whole effective batch as `normalizer` under gradient
   * accumulation; default: this batch's own count (the plain mean). The caller disposes
   * lossSum, correct and grads.
   */
  lossAndGrads(
    batch: TokenBatch,
    options: ForwardOptions & { normalizer?: number } = {},
  ): { lossSum: tf.Scalar; correct: tf.Scalar; tokenCount: number; grads: tf.NamedTensorMap } {
    if (this.trainableParams.size === 0)
      throw new Error("lossAndGrads: the model has no trainable parameters (no LoRA, no full fine-tuning)");
    ensureGradientsRegistered();
    const shifted = shiftLabels(batch.labels, batch.batchSize, batch.seqLen, this.config.vocabSize);
    const normalizer = options.normalizer ?? Math.max(1, shifted.count);
    if (!(normalizer > 0)) throw new Error(`lossAndGrads: normalizer must be > 0, got ${normalizer}`);
    const byVariable = new Map<string, string>();
    for (const [name, v] of this.trainableParams) byVariable.set(v.name, name);
    let lossSum: tf.Scalar | undefined;
    let correct: tf.Scalar | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const r = this.chunkedLoss(batch, shifted, { ...options, checkpoint: this.gradientCheckpointing });
      correct = tf.keep(r.correct);
      lossSum = tf.keep(tf.clone(r.lossSum));
      return tf.div(r.lossSum, normalizer) as tf.Scalar;
    }, [...this.trainableParams.values()]);
    value.dispose();
    const named: tf.NamedTensorMap = {};
    for (const [varName, g] of Object.entries(grads)) named[byVariable.get(varName) ?? varName] = g;
    return {
      lossSum: lossSum as tf.Scalar,
      correct: correct as tf.Scalar,
      tokenCount: shifted.count,
      grads: named,
    };
  }

  /** Loss sum, label-token count and correct-argmax count as numbers (evaluation, no gradients). */
  async evaluate(
    batch: TokenBatch,
    options: ForwardOptions = {},
  ): Promise<{ lossSum: number; tokenCount: number; correct: number }> {
    const shifted = shiftLabels(batch.labels, batch.batchSize, batch.seqLen, this.config.vocabSize);
    const [sum, correct] = tf.tidy(() => {
      const r = this.chunkedLoss(batch, shifted, options);
      return [r.lossSum, r.correct];
    });
    const [lossSum, correctN] = [(await sum.data())[0], (await correct.data())[0]];
    sum.dispose();
    correct.dispose();
    return { lossSum, tokenCount: shifted.count, correct: correctN };
  }

  // ----------------------------------------------------------------------- KV-cache decoding

  newCache(): KvCache {
    return { keys: [], values: [], length: 0 };
  }

  disposeCache(cache: KvCache): void {
    for (const t of [...cache.keys, ...cache.values]) t.dispose();
    cache.keys = [];
    cache.values = [];
    cache.length = 0;
  }

  /**
   * Feed `ids` (one sequence) after what the cache holds and extend the cache in place (the old
   * cache tensors are freed). Returns the logits of the last position [1, V], or of every new
   * position [ids.length, V] with `allPositions`.
   */
  forwardCached(
    ids: ArrayLike<number>,
    cache: KvCache,
    options: ForwardOptions & { allPositions?: boolean } = {},
  ): tf.Tensor2D {
    this.assertUsable();
    const T = ids.length;
    if (T === 0) throw new Error("forwardCached: no ids given");
    const past = cache.length;
    const positions = Int32Array.from({ length: T }, (_, i) => past + i);
    const old = [...cache.keys, ...cache.values];
    const logits = tf.tidy(() => {
      const biases = new Map<number | null, tf.Tensor>();
      const biasFor = (layer: number) => {
        const window = this.config.layerWindows[layer];
        let bias = biases.get(window);
        if (!bias) {
          bias = tf.tensor4d(buildCachedAttentionBias(past, T, window), [1, 1, T, past + T]);
          biases.set(window, bias);
        }
        return bias;
      };
      const out = this.run(
        Int32Array.from(ids),
        positions,
        1,
        T,
        biasFor,
        options,
        cache,
        !options.allPositions,
      );
      for (const t of [...cache.keys, ...cache.values]) tf.keep(t);
      return out;
    });
    for (const t of old) t.dispose();
    cache.length = past + T;
    return logits;
  }

  /**
   * One forward pass over several sequences, each after what its own cache holds and with its own
   * adapter (given here, never mounted on the model, so concurrent requests cannot see each
   * other's weights). The linear layers and the LM head run once over all rows' tokens; attention
   * runs per row against that row's cache. Caches are extended in place. Returns the logits of
   * each row's last position [rows, V], or of every new position [Σ ids, V] with `allPositions`.
   */
  forwardCachedRows(rows: readonly CachedRow[], options: { allPositions?: boolean } = {}): tf.Tensor2D {
    this.assertUsable();
    if (rows.length === 0) throw new Error("forwardCachedRows: no rows given");
    const spans: { start: number; length: number; past: number }[] = [];
    let total = 0;
    for (const row of rows) {
      if (row.ids.length === 0) throw new Error("forwardCachedRows: a row has no ids");
      spans.push({ start: total, length: row.ids.length, past: row.cache.length });
      total += row.ids.length;
    }
    const ids = new Int32Array(total);
    rows.forEach((row, r) => {
      ids.set(Array.from(row.ids), spans[r].start);
    });
    const old = rows.flatMap((row) => [...row.cache.keys, ...row.cache.values]);
    const adapters = rows.map((row) => row.adapter);
    // rows that feed one token at the same position (n choices of a prompt, equal-length requests)
    const stepGroups: number[][] = [];
    const byPosition = new Map<number, number[]>();
    spans.forEach((s, r) => {
      const group = s.length === 1 && s.past > 0 ? byPosition.get(s.past) : undefined;
      if (group) group.push(r);
      else {
        const fresh = [r];
        stepGroups.push(fresh);
        if (s.length === 1 && s.past > 0) byPosition.set(s.past, fresh);
      }
    });
    // a pass that throws leaves every cache as it was (its new tensors are freed by tidy)
    const before = rows.map((row) => ({ keys: [...row.cache.keys], values: [...row.cache.values] }));
    const restore = () =>
      rows.forEach((row, r) => {
        row.cache.keys = before[r].keys;
        row.cache.values = before[r].values;
      });
    let logits: tf.Tensor2D;
    try {
      logits = this.batchedCachedForward(rows, spans, ids, adapters, stepGroups, total, options);
    } catch (err) {
      restore();
      throw err;
    }
    for (const t of old) t.dispose();
    rows.forEach((row, r) => {
      row.cache.length = spans[r].past + spans[r].length;
    });
    return logits;
  }

  private batchedCachedForward(
    rows: readonly CachedRow[],
    spans: readonly { start: number; length: number; past: number }[],
    ids: Int32Array,
    adapters: readonly (RowAdapter | null)[],
    stepGroups: readonly number[][],
    total: number,
    options: { allPositions?: boolean },
  ): tf.Tensor2D {
    return tf.tidy(() => {
      const ropes = spans.map((s) =>
        this.rope(
          Int32Array.from({ length: s.length }, (_, i) => s.past + i),
          1,
          s.length,
        ),
      );
      const biasCache = new Map<string, tf.Tensor>();
      const biasFor = (r: number, layer: number) => {
        const window = this.config.layerWindows[layer];
        const { past, length } = spans[r];
        const key = `${past},${length},${window}`;
        let bias = biasCache.get(key);
        if (!bias) {
          bias = tf.tensor4d(buildCachedAttentionBias(past, length, window), [1, 1, length, past + length]);
          biasCache.set(key, bias);
        }
        return bias;
      };
      const project = (x: tf.Tensor2D, p: Projection) => this.projectRows(x, p, adapters, spans);
      let x = this.embed(ids);
      this.layers.forEach((layer, i) => {
        const h = rmsNorm(x, layer.inputNorm, this.config.rmsNormEps);
        const q = project(h, layer.q);
        const k = project(h, layer.k);
        const v = project(h, layer.v);
        const slot = (row: CachedRow) => ({
          keys: row.cache.keys[i] ?? null,
          values: row.cache.values[i] ?? null,
          store: (kk: tf.Tensor4D, vv: tf.Tensor4D) => {
            row.cache.keys[i] = kk;
            row.cache.values[i] = vv;
          },
        });
        const part = (t: tf.Tensor2D, r: number) =>
          rows.length === 1 ? t : (tf.slice(t, [spans[r].start, 0], [spans[r].length, -1]) as tf.Tensor2D);
        // rows decoding one token at the same position share one attention (their caches stacked)
        const contexts: tf.Tensor2D[] = [];
        const order: number[] = [];
        for (const group of stepGroups) {
          if (group.length === 1) {
            const r = group[0];
            contexts.push(
              this.cachedAttentionRow(
                part(q, r),
                part(k, r),
                part(v, r),
                spans[r].length,
                ropes[r],
                biasFor(r, i),
                slot(rows[r]),
              ),
            );
          } else {
            const pick = (t: tf.Tensor2D) => tf.gather(t, tf.tensor1d(group, "int32")) as tf.Tensor2D;
            contexts.push(
              this.cachedAttentionGroup(
                pick(q),
                pick(k),
                pick(v),
                ropes[group[0]],
                biasFor(group[0], i),
                group.map((r) => slot(rows[r])),
              ),
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
        x = tf.add(x, project(merged, layer.o));
        const h2 = rmsNorm(x, layer.postAttentionNorm, this.config.rmsNormEps);
        const gate = project(h2, layer.gate);
        const up = project(h2, layer.up);
        const silu = tf.mul(gate, tf.sigmoid(gate));
        x = tf.add(x, project(tf.mul(silu, up) as tf.Tensor2D, layer.down));
      });
      if (!options.allPositions) {
        x =
          rows.length === 1
            ? tf.slice(x, [total - 1, 0], [1, -1])
            : tf.gather(
                x,
                tf.tensor1d(
                  spans.map((s) => s.start + s.length - 1),
                  "int32",
                ),
              );
      }
      const normed = rmsNorm(x as tf.Tensor2D, this.finalNorm, this.config.rmsNormEps);
      for (const row of rows) for (const t of [...row.cache.keys, ...row.cache.values]) tf.keep(t);
      return linear(normed, this.lmHead);
    });
  }

  /**
   * x·Wᵀ (+ b) for all rows at once, plus each row's own LoRA delta (rows that share an adapter
   * and sit next to each other get one delta product). Same ops as loraLinear for a single row.
   */
  private projectRows(
    x: tf.Tensor2D,
    p: Projection,
    adapters: readonly (RowAdapter | null)[],
    spans: readonly { start: number; length: number }[],
  ): tf.Tensor2D {
    const base = linear(x, p.weight, p.bias);
    const pairOf = (r: number) => adapters[r]?.pairs.get(p.name);
    if (adapters.every((_, r) => pairOf(r) === undefined)) return base;
    const delta = (input: tf.Tensor2D, r: number) => {
      const pair = pairOf(r) as LoraPair;
      const down = linear(input, pair.a as unknown as tf.Tensor2D);
      const scaling = (adapters[r] as RowAdapter).settings.scaling;
      return linear(tf.mul(down, scaling), pair.b as unknown as tf.Tensor2D);
    };
    if (adapters.every((a, r) => pairOf(r) === pairOf(0) && a?.settings === adapters[0]?.settings))
      return tf.add(base, delta(x, 0));
    // mixed adapters: one delta per run of neighbouring rows with the same pair, zeros elsewhere
    const out = p.weight.shape[0];
    const pieces: tf.Tensor2D[] = [];
    for (let r = 0; r < spans.length; ) {
      let end = r + 1;
      const same = (a: number) => pairOf(a) === pairOf(r) && adapters[a]?.settings === adapters[r]?.settings;
      while (end < spans.length && same(end)) end++;
      const start = spans[r].start;
      const length = spans[end - 1].start + spans[end - 1].length - start;
      pieces.push(
        pairOf(r) === undefined
          ? tf.zeros([length, out])
          : delta(tf.slice(x, [start, 0], [length, -1]) as tf.Tensor2D, r),
      );
      r = end;
    }
    return tf.add(base, tf.concat(pieces, 0));
  }

  /**
   * Attention of G rows that each feed one token at the same position, against their own caches
   * stacked into one batch: q/k/v [G, ·], rope and bias of that position; returns [G, H·dh].
   */
  private cachedAttentionGroup(
    qFlat: tf.Tensor2D,
    kFlat: tf.Tensor2D,
    vFlat: tf.Tensor2D,
    rope: RopeTensors,
    bias: tf.Tensor,
    caches: {
      keys: tf.Tensor4D | null;
      values: tf.Tensor4D | null;
      store: (k: tf.Tensor4D, v: tf.Tensor4D) => void;
    }[],
  ): tf.Tensor2D {
    const { numHeads: H, numKvHeads: Hkv, headDim: dh } = this.config;
    const g = H / Hkv;
    const G = caches.length;
    const q = applyRope(tf.reshape(qFlat, [G, 1, H, dh]), rope.qCos, rope.qSin);
    const kNew = applyRope(tf.reshape(kFlat, [G, 1, Hkv, dh]), rope.cos, rope.sin);
    const vNew = tf.reshape(vFlat, [G, 1, Hkv, dh]);
    const k = tf.concat(
      [
        tf.concat(
          caches.map((c) => c.keys as tf.Tensor4D),
          0,
        ),
        tf.transpose(kNew, [0, 2, 1, 3]),
      ],
      2,
    ) as tf.Tensor4D;
    const v = tf.concat(
      [
        tf.concat(
          caches.map((c) => c.values as tf.Tensor4D),
          0,
        ),
        tf.transpose(vNew, [0, 2, 1, 3]),
      ],
      2,
    ) as tf.Tensor4D;
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

  /** Attention of one row (T new positions) against its cache; same ops as attention() with B = 1. */
  private cachedAttentionRow(
    qFlat: tf.Tensor2D,
    kFlat: tf.Tensor2D,
    vFlat: tf.Tensor2D,
    T: number,
    rope: RopeTensors,
    bias: tf.Tensor,
    cache: {
      keys: tf.Tensor4D | null;
      values: tf.Tensor4D | null;
      store: (k: tf.Tensor4D, v: tf.Tensor4D) => void;
    },
  ): tf.Tensor2D {
    const { numHeads: H, numKvHeads: Hkv, headDim: dh } = this.config;
    const g = H / Hkv;
    const q = applyRope(tf.reshape(qFlat, [1, T, H, dh]), rope.qCos, rope.qSin);
    const kNew = applyRope(tf.reshape(kFlat, [1, T, Hkv, dh]), rope.cos, rope.sin);
    const vNew = tf.reshape(vFlat, [1, T, Hkv, dh]);
    let k = tf.transpose(kNew, [0, 2, 1, 3]) as tf.Tensor4D;
    let v = tf.transpose(vNew, [0, 2, 1, 3]) as tf.Tensor4D;
    if (cache.keys && cache.values) {
      k = tf.concat([cache.keys, k], 2);
      v = tf.concat([cache.values, v], 2);
    }
    cache.store(k, v);
    const Tk = k.shape[2];
    const qHeads = tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [1, Hkv, g * T, dh]);
    const scores = tf.matMul(qHeads, k, false, true);
    const masked = tf.add(tf.reshape(scores, [1, H, T, Tk]), bias);
    const probs = tf.reshape(tf.softmax(masked), [1, Hkv, g * T, Tk]);
    const context = tf.reshape(tf.matMul(probs, v), [1, H, T, dh]);
    return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [T, H * dh]) as tf.Tensor2D;
  }

  // ------------------------------------------------------------------------------- saving

  /** Write the LoRA adapter in PEFT's layout (adapter_config.json + adapter_model.safetensors). */
  async saveAdapter(dir: string, baseModelName = path.basename(this.folder)): Promise<void> {
    const { saveAdapter } = await import("../lora/adapter-io.js");
    await saveAdapter(this, dir, baseModelName);
  }

  /** Attach a PEFT adapter folder (ours or PEFT's), replacing any adapter attached now. */
  async loadAdapter(dir: string): Promise<LoraSettings> {
    const { loadAdapter } = await import("../lora/adapter-io.js");
    return loadAdapter(this, dir);
  }

  /** Current value of a base weight by HF name (for saving and tests). */
  weight(name: string): tf.Tensor {
    const t = this.weights.get(name);
    if (!t) throw new Error(`no weight named "${name}"`);
    return t;
  }

  /**
   * Replace a projection's base weight (e.g. with a parent adapter merged in, merge-adapter.ts);
   * the old tensor is freed (under full fine-tuning the variable takes the new value).
   */
  replaceProjectionWeight(moduleName: string, value: tf.Tensor2D): void {
    const p = this.projectionByName(moduleName);
    if (!p) throw new Error(`no projection named "${moduleName}"`);
    if (value.shape.join(",") !== p.weight.shape.join(","))
      throw new Error(`${moduleName}: new weight [${value.shape}] differs from [${p.weight.shape}]`);
    if (this.fullFinetune) {
      // the weight is the trained variable itself: keep it, change its value
      (p.weight as unknown as tf.Variable).assign(value);
      value.dispose();
      return;
    }
    const name = `${moduleName}.weight`;
    p.weight.dispose();
    p.weight = value;
    this.weights.set(name, value);
  }

  /** Base weight names, in HF state-dict order (tied heads absent). */
  weightNames(): string[] {
    return [...this.weights.keys()];
  }

  /**
   * Write a complete model folder (full fine-tuning output) that loads like any HF folder
   * (model/full-model-io.ts).
   */
  async saveFullModel(dir: string): Promise<void> {
    const { saveFullModel } = await import("./full-model-io.js");
    await saveFullModel(this, dir);
  }

  // --------------------------------------------------------------------------- lifecycle

  private assertUsable(): void {
    if (this.disposed) throw new Error("model used after dispose()");
  }

  dispose(): void {
    if (this.disposed) return;
    this.detachLora();
    for (const t of this.weights.values()) t.dispose();
    this.weights.clear();
    this.trainableParams.clear();
    this.disposed = true;
  }
}

/**
 * Load a model folder: config.json (either layout), weights widened to float32, and optionally
 * a new LoRA adapter, an existing PEFT adapter, or full fine-tuning.
 */
export async function loadModel(folder: string, options: LoadModelOptions = {}): Promise<CausalLM> {
  const configPath = path.join(folder, options.configFile ?? "config.json");
  const rawConfig = JSON.parse(await readFile(configPath, "utf8")) as Record<string, unknown>;
  const config = parseModelConfig(rawConfig);
  const weights = await readModelWeights(
    folder,
    options.weightsFile,
    new Set(expectedWeightShapes(config).keys()),
  );
  const model = new CausalLM(config, weights, {
    folder,
    rawConfig,
    fullFinetune: options.fullFinetune,
    seed: options.seed,
  });
  weights.clear();
  if (options.adapterDir) {
    const { loadAdapter } = await import("../lora/adapter-io.js");
    await loadAdapter(model, options.adapterDir);
  } else if (options.lora) {
    model.attachLora(options.lora);
  }
  return model;
}
