// Hugging Face config.json → the one typed ModelConfig the decoder reads.
// Accepts LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM in both the transformers-4
// layout (rope_theta, rope_scaling, torch_dtype) and the transformers-5 layout (rope_parameters,
// dtype). Anything the decoder cannot compute exactly is refused here, with the field named, so
// the API can turn a model away when the job is created instead of halfway through training.

export const SUPPORTED_ARCHITECTURES = [
  "LlamaForCausalLM",
  "MistralForCausalLM",
  "Qwen2ForCausalLM",
] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

export type RopeConfig =
  | { type: "default"; theta: number }
  | { type: "linear"; theta: number; factor: number }
  | { type: "dynamic"; theta: number; factor: number; originalMaxPositionEmbeddings: number }
  | {
      type: "llama3";
      theta: number;
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

export interface ModelConfig {
  architecture: Architecture;
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** bias on q/k/v projections (Qwen2 always; Llama with attention_bias) */
  qkvBias: boolean;
  /** bias on o_proj (Llama's attention_bias covers o_proj too; Qwen2 has none) */
  oBias: boolean;
  /** bias on gate/up/down (Llama's mlp_bias) */
  mlpBias: boolean;
  rope: RopeConfig;
  /** per layer: null = full causal attention, n = query i sees keys j with i - n < j <= i */
  layerWindows: (number | null)[];
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** the dtype the weights were saved in (informational: compute is always float32) */
  savedDtype: string | null;
}

export class UnsupportedModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsupportedModelError";
  }
}

type Json = Record<string, unknown>;

function num(raw: Json, key: string, fallback?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new UnsupportedModelError(`config.json: missing required field "${key}"`);
  }
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new UnsupportedModelError(`config.json: field "${key}" must be a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function positiveInt(raw: Json, key: string, fallback?: number): number {
  const v = num(raw, key, fallback);
  if (!Number.isInteger(v) || v <= 0) {
    throw new UnsupportedModelError(`config.json: field "${key}" must be a positive integer, got ${v}`);
  }
  return v;
}

function idList(v: unknown, key: string): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) {
    if (!Number.isInteger(id))
      throw new UnsupportedModelError(`config.json: "${key}" must be token id(s), got ${JSON.stringify(v)}`);
  }
  return list as number[];
}

/** The rope block: transformers-5 `rope_parameters` or transformers-4 `rope_theta` + `rope_scaling`. */
function parseRope(raw: Json): RopeConfig {
  const params = (raw.rope_parameters ?? null) as Json | null;
  const scaling = (raw.rope_scaling ?? null) as Json | null;
  if (params !== null && typeof params !== "object") {
    throw new UnsupportedModelError(`config.json: "rope_parameters" must be an object`);
  }
  if (scaling !== null && typeof scaling !== "object") {
    throw new UnsupportedModelError(`config.json: "rope_scaling" must be an object or null`);
  }
  const block: Json = { ...(scaling ?? {}), ...(params ?? {}) };
  const theta = typeof block.rope_theta === "number" ? block.rope_theta : num(raw, "rope_theta", 10000);
  const type = (block.rope_type ?? block.type ?? "default") as string;
  const where = params ? "rope_parameters" : "rope_scaling";
  const field = (key: string, fallback?: number): number => {
    const v = block[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new UnsupportedModelError(`config.json: ${where}.${key} is required for rope_type "${type}"`);
    }
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new UnsupportedModelError(
        `config.json: ${where}.${key} must be a number, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  };
  const maxPos = num(raw, "max_position_embeddings", 2048);
  switch (type) {
    case "default":
      return { type: "default", theta };
    case "linear":
      return { type: "linear", theta, factor: field("factor") };
    case "dynamic":
      return {
        type: "dynamic",
        theta,
        factor: field("factor"),
        originalMaxPositionEmbeddings: field("original_max_position_embeddings", maxPos),
      };
    case "llama3":
      return {
        type: "llama3",
        theta,
        factor: field("factor"),
        lowFreqFactor: field("low_freq_factor"),
        highFreqFactor: field("high_freq_factor"),
        originalMaxPositionEmbeddings: field("original_max_position_embeddings"),
      };
    default:
      throw new UnsupportedModelError(
        `config.json: unsupported ${where}.rope_type "${type}" (supported: default, linear, dynamic, llama3)`,
      );
  }
}

function layerWindows(raw: Json, architecture: Architecture, numLayers: number): (number | null)[] {
  const window = raw.sliding_window;
  const windowSize = typeof window === "number" && window > 0 ? window : null;
  if (window !== undefined && window !== null && windowSize === null) {
    throw new UnsupportedModelError(
      `config.json: "sliding_window" must be a positive integer or null, got ${JSON.stringify(window)}`,
    );
  }
  if (architecture === "MistralForCausalLM") return Array(numLayers).fill(windowSize);
  if (architecture === "Qwen2ForCausalLM") {
    if (!raw.use_sliding_window || windowSize === null) return Array(numLayers).fill(null);
    // transformers-5 lists the kind of every layer; transformers-4 derives it from max_window_layers
    const types = raw.layer_types as unknown;
    if (Array.isArray(types)) {
      if (types.length !== numLayers) {
        throw new UnsupportedModelError(
          `config.json: "layer_types" has ${types.length} entries for ${numLayers} layers`,
        );
      }
      return types.map((t, i) => {
        if (t === "sliding_attention") return windowSize;
        if (t === "full_attention") return null;
        throw new UnsupportedModelError(`config.json: layer_types[${i}] = "${t}" is not supported`);
      });
    }
    const maxWindowLayers = positiveInt(raw, "max_window_layers", numLayers);
    return Array.from({ length: numLayers }, (_, i) => (i >= maxWindowLayers ? windowSize : null));
  }
  return Array(numLayers).fill(null);
}

/** Parse a config.json object. Throws UnsupportedModelError naming the architecture or field. */
export function parseModelConfig(raw: unknown): ModelConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new UnsupportedModelError("config.json: expected a JSON object");
  }
  const cfg = raw as Json;
  const archs = cfg.architectures;
  if (!Array.isArray(archs) || archs.length !== 1 || typeof archs[0] !== "string") {
    throw new UnsupportedModelError(
      `config.json: "architectures" must name exactly one of ${SUPPORTED_ARCHITECTURES.join(", ")}, got ${JSON.stringify(archs)}`,
    );
  }
  const architecture = archs[0] as Architecture;
  if (!SUPPORTED_ARCHITECTURES.includes(architecture)) {
    throw new UnsupportedModelError(
      `unsupported architecture "${archs[0]}" (supported: ${SUPPORTED_ARCHITECTURES.join(", ")})`,
    );
  }
  const act = cfg.hidden_act ?? "silu";
  if (act !== "silu")
    throw new UnsupportedModelError(`config.json: hidden_act "${String(act)}" is not supported (only silu)`);
  const tp = cfg.pretraining_tp ?? 1;
  if (tp !== 1)
    throw new UnsupportedModelError(`config.json: pretraining_tp ${String(tp)} is not supported (only 1)`);
  const partial = cfg.partial_rotary_factor ?? 1;
  if (partial !== 1)
    throw new UnsupportedModelError(`config.json: partial_rotary_factor ${String(partial)} is not supported`);
  if (cfg.quantization_config)
    throw new UnsupportedModelError("config.json: quantized models (quantization_config) are not supported");

  const hiddenSize = positiveInt(cfg, "hidden_size");
  const numHeads = positiveInt(cfg, "num_attention_heads");
  const numKvHeads = positiveInt(cfg, "num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new UnsupportedModelError(
      `config.json: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  const headDim = cfg.head_dim == null ? hiddenSize / numHeads : positiveInt(cfg, "head_dim");
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new UnsupportedModelError(`config.json: head_dim ${headDim} must be an even integer`);
  }
  const numLayers = positiveInt(cfg, "num_hidden_layers");
  const isQwen2 = architecture === "Qwen2ForCausalLM";
  const attentionBias = cfg.attention_bias === true;
  return {
    architecture,
    modelType: String(cfg.model_type ?? ""),
    vocabSize: positiveInt(cfg, "vocab_size"),
    hiddenSize,
    intermediateSize: positiveInt(cfg, "intermediate_size"),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: num(cfg, "rms_norm_eps", 1e-6),
    maxPositionEmbeddings: positiveInt(cfg, "max_position_embeddings", 2048),
    tieWordEmbeddings: cfg.tie_word_embeddings === true,
    qkvBias: isQwen2 || (architecture === "LlamaForCausalLM" && attentionBias),
    oBias: architecture === "LlamaForCausalLM" && attentionBias,
    mlpBias: architecture === "LlamaForCausalLM" && cfg.mlp_bias === true,
    rope: parseRope(cfg),
    layerWindows: layerWindows(cfg, architecture, numLayers),
    bosTokenId: Number.isInteger(cfg.bos_token_id) ? (cfg.bos_token_id as number) : null,
    eosTokenIds: idList(cfg.eos_token_id, "eos_token_id"),
    padTokenId: Number.isInteger(cfg.pad_token_id) ? (cfg.pad_token_id as number) : null,
    savedDtype:
      typeof (cfg.dtype ?? cfg.torch_dtype) === "string" ? ((cfg.dtype ?? cfg.torch_dtype) as string) : null,
  };
}
