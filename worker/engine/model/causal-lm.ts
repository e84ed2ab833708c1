// LlamaForCausalLM (Llama 1–3.x, Mistral, Qwen2) in tfjs-core ops, float32: the decoder stack
// (decoder-model.ts, LlamaModel) under the LM head, composed with the model's weights
// (model-weights.ts), its own LoRA adapter (own-adapter.ts), the chunked loss (lm-head-loss.ts)
// and KV-cache decoding (cached-decoding.ts).
//
//   const model = await loadModel(folder, { lora: { r: 8, alpha: 16, dropout: 0.05 }, seed: 1 });
//   model.forward(batch, opts?)        logits [B·T, V] for a TokenBatch (data/batch.ts)
//   model.lossTerms(batch, opts?)      { lossSum, correct } scalars + tokenCount, differentiable
//   model.evaluate(batch)              { lossSum, tokenCount, correct } as numbers, no gradients
//   model.sequenceLogprobs(batch, opts?)  Σ log p(label) per row [B] (DPO; disableAdapter = reference)
//   model.trainableParams              Map<name, tf.Variable>: PEFT tensor names
//                                      (base_model.model.…lora_A.weight) for LoRA, HF state-dict
//                                      names for full fine-tuning
//   model.adapter / saveAdapter(dir) / loadAdapter(dir)   the own adapter, PEFT layout
//   model.rngState() / setRngState()   the dropout RNG, for checkpoints
//   model.saveFullModel(dir)           model.safetensors + config for full fine-tuning
//   model.newCache() / forwardCached(ids, cache, opts?) / disposeCache(cache)   KV-cache decoding
//   model.forwardCachedRows(rows)      many sequences in one pass, each with its own cache and adapter
//
// Which adapter a pass applies is an option of the pass (`adapter`, `disableAdapter`), the
// model's own by default: a model shared by requests is never changed to serve one of them.
// Base weights are plain tensors (frozen); only LoRA pairs, or every weight under full
// fine-tuning, are tf.Variables.

import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type { TokenBatch } from "../data/batch.js";
import type { ModelConfig } from "../hf/config.js";
import type { FloatTensorData } from "../hf/safetensors.js";
import type { LoraAdapter } from "../lora/lora-adapter.js";
import type { LoraOptions, LoraSettings } from "../lora/lora-config.js";
import type { LoraLinear } from "../lora/lora-layer.js";
import { lmHeadChunkTokens } from "../train/memory-estimate.js";
import { Rng, type RngState } from "../train/rng.js";
import { forwardCached, forwardCachedRows } from "./cached-decoding.js";
import type { CachedRow } from "./cached-rows.js";
import { shiftLabels, tokenCrossEntropy } from "./cross-entropy.js";
import { batchAttentionBias, batchTokens, DecoderModel, type LayerPass } from "./decoder-model.js";
import { type ForwardOptions, layerPass, type PassOptions } from "./forward-options.js";
import { saveFullModel } from "./full-model-io.js";
import { disposeKvCache, type KvCache, newKvCache } from "./kv-cache.js";
import { linear } from "./linear.js";
import { lmHeadLoss } from "./lm-head-loss.js";
import { ModelWeights } from "./model-weights.js";
import { OwnAdapter } from "./own-adapter.js";
import { seedStreams } from "./seed-streams.js";

export type { ForwardOptions } from "./forward-options.js";

export interface LossTerms {
  /** Σ token cross-entropy over label tokens (scalar, differentiable) */
  lossSum: tf.Scalar;
  /** number of label tokens scored */
  tokenCount: number;
  /** label tokens where argmax(logits) = label (scalar, no gradient) */
  correct: tf.Scalar;
}

export class CausalLM {
  readonly config: ModelConfig;
  /** the folder it was loaded from and its raw config.json (for saving full models) */
  readonly folder: string;
  readonly rawConfig: Record<string, unknown>;
  readonly fullFinetune: boolean;
  /** trainable parameters by name; the loop takes gradients for exactly these */
  readonly trainableParams = new Map<string, tf.Variable>();

  private readonly weights: ModelWeights;
  private readonly model: DecoderModel;
  private readonly lmHead: tf.Tensor2D;
  private readonly own: OwnAdapter;
  private rng: Rng;
  private readonly seed: number;
  private disposed = false;

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
    this.weights = ModelWeights.upload(config, weights, {
      folder: this.folder,
      fullFinetune: this.fullFinetune,
    });
    if (this.fullFinetune)
      for (const [name, w] of this.weights.entries()) this.trainableParams.set(name, w as tf.Variable);
    this.model = DecoderModel.fromWeights(config, this.weights, this.fullFinetune);
    this.own = new OwnAdapter(this.trainableParams, () => this.projections(), this.fullFinetune);
    this.lmHead = (
      config.tieWordEmbeddings ? this.model.embedTokens : this.weights.get("lm_head.weight")
    ) as tf.Tensor2D;
  }

  /** Every projection of every layer, in layer order. */
  projections(): LoraLinear[] {
    return this.model.projections();
  }

  /** Unique parameter count (tied weights once), LoRA excluded. */
  numBaseParameters(): number {
    return this.weights.numParameters();
  }

  // ---------------------------------------------------------------------------------- LoRA

  /** The model's own adapter (the one it trains and saves), or null. */
  get adapter(): LoraAdapter | null {
    return this.own.adapter;
  }

  /** The own adapter's settings, or null. */
  get loraSettings(): LoraSettings | null {
    return this.own.adapter?.settings ?? null;
  }

  /**
   * Attach a fresh LoRA adapter (A kaiming-uniform from the model's seed, B = 0) on the target
   * modules, replacing any adapter attached now. Not combinable with full fine-tuning.
   */
  attachLora(options: LoraOptions): LoraSettings {
    return this.own.attach(options, this.seed);
  }

  /** Remove and free the own adapter (the base model is untouched). */
  detachLora(): void {
    this.own.detach();
  }

  /** Attach a PEFT adapter folder (ours or PEFT's) as the own adapter, replacing any attached now. */
  loadAdapter(dir: string): Promise<LoraSettings> {
    return this.own.load(dir);
  }

  /** Write the own LoRA adapter in PEFT's layout (adapter_config.json + adapter_model.safetensors). */
  saveAdapter(dir: string, baseModelName = path.basename(this.folder)): Promise<void> {
    return this.own.save(dir, baseModelName);
  }

  /** The projection a PEFT module path names, e.g. "model.layers.0.self_attn.q_proj". */
  projectionByName(moduleName: string): LoraLinear | undefined {
    return this.projections().find((p) => p.name === moduleName);
  }

  // ------------------------------------------------------------------------------ forward

  rngState(): RngState {
    return this.rng.state();
  }

  setRngState(state: RngState): void {
    this.rng = Rng.fromState(state);
  }

  /** How a pass with `options` runs the projections; dropout seeds come from the model's stream. */
  private passFor(options: PassOptions): LayerPass {
    return layerPass(options, this.own.adapter, () => this.rng.nextSeed());
  }

  /** Final hidden states [B·T, D] for a batch (the LM head's input). */
  private hiddenForBatch(batch: TokenBatch, options: PassOptions): tf.Tensor2D {
    this.assertUsable();
    const tokens = batchTokens(batch);
    return this.model.hiddenStates(tokens, batchAttentionBias(this.config, batch), this.passFor(options));
  }

  /** [Σ loss, argmax hits] through the chunked LM head (never the whole [B·T, V] logits). */
  private chunkedLoss(
    batch: TokenBatch,
    shifted: { targets: Int32Array; weights: Float32Array },
    options: PassOptions,
  ): [tf.Scalar, tf.Scalar] {
    return tf.tidy(() => {
      const hidden = this.hiddenForBatch(batch, options);
      const r = lmHeadLoss(hidden, this.lmHead, shifted.targets, shifted.weights, {
        chunkTokens: this.lmHeadChunkTokens,
        headTrainable: this.fullFinetune,
      });
      return [r.lossSum, r.correct];
    });
  }

  /** Logits [B·T, V] for a batch; logits at t predict the token at t + 1. */
  forward(batch: TokenBatch, options: ForwardOptions = {}): tf.Tensor2D {
    // the attention biases are made lazily inside the tidy, so it frees them with the activations
    return tf.tidy(() => linear(this.hiddenForBatch(batch, options), this.lmHead));
  }

  /** Loss terms for a batch. Call inside tf.variableGrads / tf.grads to differentiate lossSum. */
  lossTerms(batch: TokenBatch, options: ForwardOptions = {}): LossTerms {
    const shifted = shiftLabels(batch.labels, batch.batchSize, batch.seqLen, this.config.vocabSize);
    const checkpoint = options.training === true && this.gradientCheckpointing;
    const [lossSum, correct] = this.chunkedLoss(batch, shifted, { ...options, checkpoint });
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

  /** Loss sum, label-token count and correct-argmax count as numbers (evaluation, no gradients). */
  async evaluate(
    batch: TokenBatch,
    options: ForwardOptions = {},
  ): Promise<{ lossSum: number; tokenCount: number; correct: number }> {
    const shifted = shiftLabels(batch.labels, batch.batchSize, batch.seqLen, this.config.vocabSize);
    const [sum, correct] = this.chunkedLoss(batch, shifted, options);
    const [lossSum, correctN] = [(await sum.data())[0], (await correct.data())[0]];
    sum.dispose();
    correct.dispose();
    return { lossSum, tokenCount: shifted.count, correct: correctN };
  }

  // ----------------------------------------------------------------------- KV-cache decoding

  newCache(): KvCache {
    return newKvCache();
  }

  disposeCache(cache: KvCache): void {
    disposeKvCache(cache);
  }

  /**
   * Feed `ids` (one sequence) after what the cache holds and extend the cache in place (the old
   * cache tensors are freed). Returns the logits of the last position [1, V], or of every new
   * position [ids.length, V] with `allPositions`. An `adapter` given here decodes the sequence as
   * one row of forwardCachedRows, the path serving runs.
   */
  forwardCached(
    ids: ArrayLike<number>,
    cache: KvCache,
    options: ForwardOptions & { allPositions?: boolean } = {},
  ): tf.Tensor2D {
    this.assertUsable();
    if (options.adapter !== undefined) {
      const adapter = options.disableAdapter ? null : options.adapter;
      return this.forwardCachedRows([{ ids, cache, adapter }], { allPositions: options.allPositions });
    }
    const parts = { decoder: this.model, lmHead: this.lmHead };
    return forwardCached(parts, ids, cache, this.passFor(options), options.allPositions === true);
  }

  /**
   * One forward pass over several sequences, each after what its own cache holds and with its own
   * adapter (cached-rows.ts); caches are extended in place. Returns the logits of each row's last
   * position [rows, V], or of every new position [Σ ids, V] with `allPositions`.
   */
  forwardCachedRows(rows: readonly CachedRow[], options: { allPositions?: boolean } = {}): tf.Tensor2D {
    this.assertUsable();
    return forwardCachedRows({ decoder: this.model, lmHead: this.lmHead }, rows, options);
  }

  // ------------------------------------------------------------------------------- saving

  /** Current value of a base weight by HF name (for saving and tests). */
  weight(name: string): tf.Tensor {
    return this.weights.weight(name);
  }

  /**
   * Replace a projection's base weight (e.g. with a parent adapter merged in, merge-adapter.ts);
   * the old tensor is freed (under full fine-tuning the variable takes the new value).
   */
  replaceProjectionWeight(moduleName: string, value: tf.Tensor2D): void {
    const p = this.projectionByName(moduleName);
    if (!p) throw new Error(`no projection named "${moduleName}"`);
    this.weights.replaceProjection(p, value);
  }

  /** Base weight names, in HF state-dict order (tied heads absent). */
  weightNames(): string[] {
    return this.weights.names();
  }

  /**
   * Write a complete model folder (full fine-tuning output) that loads like any HF folder
   * (model/full-model-io.ts).
   */
  async saveFullModel(dir: string): Promise<void> {
    await saveFullModel(this, dir);
  }

  // --------------------------------------------------------------------------- lifecycle

  private assertUsable(): void {
    if (this.disposed) throw new Error("model used after dispose()");
  }

  dispose(): void {
    if (this.disposed) return;
    this.detachLora();
    this.weights.dispose();
    this.trainableParams.clear();
    this.disposed = true;
  }
}
