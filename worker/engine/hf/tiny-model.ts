// The default base model for the embedded mode and the tests: a tiny LLaMA-architecture model
// written deterministically on first use, so `npm start` and `npm test` have a model on a bare
// machine without downloading or committing weights.
//
//   const modelId = await ensureTinyModel(modelsDir);   // "tiny-chatml"
//
// The folder is a normal Hugging Face folder: config.json (LlamaForCausalLM), model.safetensors
// (seeded N(0, 0.02²) weights, ~240k parameters), a byte-level BPE tokenizer.json (256 byte
// tokens + a few dozen English merges + ChatML special tokens) that round-trips any UTF-8 text,
// tokenizer_config.json with a ChatML chat_template and eos <|im_end|>, generation_config.json.

import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { Rng } from "../train/rng.js";
import { writeSafetensors } from "./safetensors.js";

export const TINY_MODEL_ID = "tiny-chatml";
const SEED = 20261128;

const HIDDEN = 64;
const LAYERS = 4;
const HEADS = 4;
const KV_HEADS = 2;
const HEAD_DIM = 16;
const INTERMEDIATE = 192;
const MAX_POSITIONS = 2048;

/** Pairs merged in this order (GPT-2 byte alphabet: "Ġ" is a space). */
const MERGES: [string, string][] = [
  ["Ġ", "t"],
  ["Ġ", "a"],
  ["h", "e"],
  ["i", "n"],
  ["r", "e"],
  ["o", "n"],
  ["Ġt", "he"],
  ["e", "r"],
  ["Ġ", "s"],
  ["a", "t"],
  ["Ġ", "w"],
  ["Ġ", "o"],
  ["e", "n"],
  ["Ġ", "c"],
  ["i", "s"],
  ["o", "r"],
  ["e", "s"],
  ["a", "n"],
  ["Ġ", "b"],
  ["o", "u"],
  ["Ġ", "m"],
  ["Ġ", "f"],
  ["Ġ", "p"],
  ["l", "l"],
  ["i", "t"],
  ["Ġ", "d"],
  ["e", "d"],
  ["Ġ", "h"],
  ["a", "r"],
  ["in", "g"],
  ["Ġ", "i"],
  ["Ġt", "o"],
  ["Ġa", "n"],
  ["Ġan", "d"],
  ["Ġo", "f"],
  ["Ġ", "y"],
  ["Ġy", "ou"],
  ["Ġ", "I"],
  ["Ġ", "l"],
  ["Ġ", "n"],
];

export const TINY_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] as const;

/** ChatML; string or text-part content; tool calls as <tool_call> JSON like Qwen2.5. */
export const TINY_CHAT_TEMPLATE = `{%- for message in messages %}
{{- '<|im_start|>' + message['role'] + '\\n' }}
{%- if message['content'] is string %}{{- message['content'] }}
{%- elif message['content'] %}{%- for part in message['content'] %}{%- if part['type'] == 'text' %}{{- part['text'] }}{%- endif %}{%- endfor %}
{%- endif %}
{%- if message['tool_calls'] %}{%- for call in message['tool_calls'] %}{{- '\\n<tool_call>\\n{"name": "' + call['function']['name'] + '", "arguments": ' }}{%- if call['function']['arguments'] is string %}{{- call['function']['arguments'] }}{%- else %}{{- call['function']['arguments'] | tojson }}{%- endif %}{{- '}\\n</tool_call>' }}{%- endfor %}{%- endif %}
{{- '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}`;

/** GPT-2's reversible byte → printable character map used by byte-level BPE. */
export function byteToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (printable.includes(b)) map[b] = String.fromCharCode(b);
    else map[b] = String.fromCharCode(256 + extra++);
  }
  return map;
}

export function tinyTokenizerJson(): {
  json: Record<string, unknown>;
  vocabSize: number;
  specialIds: Record<string, number>;
} {
  const vocab: Record<string, number> = {};
  byteToUnicode().forEach((ch, b) => {
    vocab[ch] = b;
  });
  for (const [a, b] of MERGES) {
    if (vocab[a] === undefined || vocab[b] === undefined)
      throw new Error(`tiny tokenizer: merge "${a} ${b}" uses an unknown token`);
    if (vocab[a + b] !== undefined) throw new Error(`tiny tokenizer: merge "${a} ${b}" duplicates a token`);
    vocab[a + b] = Object.keys(vocab).length;
  }
  const specialIds: Record<string, number> = {};
  const addedTokens = TINY_SPECIAL_TOKENS.map((content) => {
    const id = Object.keys(vocab).length + Object.keys(specialIds).length;
    specialIds[content] = id;
    return {
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    };
  });
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: MERGES.map(([a, b]) => `${a} ${b}`),
    },
  };
  // round the embedding table up to a multiple of 64, as real models pad their vocabularies
  const used = Object.keys(vocab).length + addedTokens.length;
  return { json, vocabSize: Math.ceil(used / 64) * 64, specialIds };
}

function tinyTokenizerConfig(specialIds: Record<string, number>): Record<string, unknown> {
  const addedTokensDecoder: Record<string, unknown> = {};
  for (const [content, id] of Object.entries(specialIds)) {
    addedTokensDecoder[String(id)] = {
      content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
  }
  return {
    add_bos_token: false,
    add_eos_token: false,
    added_tokens_decoder: addedTokensDecoder,
    additional_special_tokens: ["<|im_start|>", "<|im_end|>"],
    bos_token: null,
    chat_template: TINY_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: "<|im_end|>",
    errors: "replace",
    model_max_length: MAX_POSITIONS,
    pad_token: "<|endoftext|>",
    split_special_tokens: false,
    tokenizer_class: "PreTrainedTokenizerFast",
    unk_token: null,
  };
}

/** Seeded N(0, std²) values (Box–Muller over the project's xoshiro RNG). */
function normal(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - rng.nextFloat();
    const u2 = rng.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

function tinyWeights(vocabSize: number): Map<string, { shape: number[]; data: Float32Array }> {
  const rng = Rng.fromSeed(SEED);
  const w = new Map<string, { shape: number[]; data: Float32Array }>();
  const add = (name: string, shape: number[], std = 0.02) =>
    w.set(name, { shape, data: normal(rng, shape[0] * shape[1], std) });
  const ones = (name: string) => w.set(name, { shape: [HIDDEN], data: new Float32Array(HIDDEN).fill(1) });
  add("model.embed_tokens.weight", [vocabSize, HIDDEN]);
  for (let i = 0; i < LAYERS; i++) {
    const p = `model.layers.${i}`;
    ones(`${p}.input_layernorm.weight`);
    ones(`${p}.post_attention_layernorm.weight`);
    add(`${p}.self_attn.q_proj.weight`, [HEADS * HEAD_DIM, HIDDEN]);
    add(`${p}.self_attn.k_proj.weight`, [KV_HEADS * HEAD_DIM, HIDDEN]);
    add(`${p}.self_attn.v_proj.weight`, [KV_HEADS * HEAD_DIM, HIDDEN]);
    add(`${p}.self_attn.o_proj.weight`, [HIDDEN, HEADS * HEAD_DIM]);
    add(`${p}.mlp.gate_proj.weight`, [INTERMEDIATE, HIDDEN]);
    add(`${p}.mlp.up_proj.weight`, [INTERMEDIATE, HIDDEN]);
    add(`${p}.mlp.down_proj.weight`, [HIDDEN, INTERMEDIATE]);
  }
  ones("model.norm.weight");
  // A wider LM head than the usual 0.02: the final RMSNorm bounds the hidden state, so with
  // 0.02 no LoRA update can move a logit by more than ~1 and a tuned tiny model stays
  // unconfident (loss stuck near 4.5 nats even at 100% token accuracy). LoRA does not train
  // the head, so its scale decides how sharp the tuned answers can get.
  add("lm_head.weight", [vocabSize, HIDDEN], 0.25);
  return w;
}

/** Write every file of the tiny model into `dir` (which must exist). */
export async function writeTinyModel(dir: string): Promise<void> {
  const { json: tokenizer, vocabSize, specialIds } = tinyTokenizerJson();
  const imEnd = specialIds["<|im_end|>"];
  const endOfText = specialIds["<|endoftext|>"];
  const config = {
    architectures: ["LlamaForCausalLM"],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: null,
    eos_token_id: imEnd,
    head_dim: HEAD_DIM,
    hidden_act: "silu",
    hidden_size: HIDDEN,
    initializer_range: 0.02,
    intermediate_size: INTERMEDIATE,
    max_position_embeddings: MAX_POSITIONS,
    mlp_bias: false,
    model_type: "llama",
    num_attention_heads: HEADS,
    num_hidden_layers: LAYERS,
    num_key_value_heads: KV_HEADS,
    pad_token_id: endOfText,
    pretraining_tp: 1,
    rms_norm_eps: 1e-6,
    rope_scaling: null,
    rope_theta: 10000.0,
    tie_word_embeddings: false,
    torch_dtype: "float32",
    use_cache: true,
    vocab_size: vocabSize,
  };
  const generation = { eos_token_id: [imEnd, endOfText], pad_token_id: endOfText };
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  await writeFile(path.join(dir, "config.json"), json(config));
  await writeFile(path.join(dir, "generation_config.json"), json(generation));
  await writeFile(path.join(dir, "tokenizer.json"), json(tokenizer));
  await writeFile(path.join(dir, "tokenizer_config.json"), json(tinyTokenizerConfig(specialIds)));
  await writeSafetensors(path.join(dir, "model.safetensors"), tinyWeights(vocabSize), { format: "pt" });
}

/**
 * A folder written by an earlier version keeps its weights but gets the current
 * tokenizer_config.json (its chat template printed tool-call arguments as "[object Map]").
 */
async function refreshTokenizerConfig(dir: string): Promise<void> {
  const file = path.join(dir, "tokenizer_config.json");
  const current = await readFile(file, "utf8").catch(() => null);
  const wanted = `${JSON.stringify(tinyTokenizerConfig(tinyTokenizerJson().specialIds), null, 2)}\n`;
  if (current === wanted) return;
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  await writeFile(tmp, wanted);
  await rename(tmp, file);
}

/**
 * Make sure `<modelsDir>/tiny-chatml` exists; returns its model id. Written into a temporary
 * folder and renamed into place, so concurrent callers (parallel tests) never see half a model.
 */
export async function ensureTinyModel(modelsDir: string): Promise<string> {
  const target = path.join(modelsDir, TINY_MODEL_ID);
  const complete = async () =>
    stat(path.join(target, "model.safetensors"))
      .then((s) => s.isFile())
      .catch(() => false);
  if (await complete()) {
    await refreshTokenizerConfig(target);
    return TINY_MODEL_ID;
  }
  await mkdir(modelsDir, { recursive: true });
  const tmp = path.join(modelsDir, `.${TINY_MODEL_ID}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  await mkdir(tmp);
  try {
    await writeTinyModel(tmp);
    await rename(tmp, target).catch(async (err: NodeJS.ErrnoException) => {
      // another process finished first: theirs is identical
      if (!(await complete())) throw err;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return TINY_MODEL_ID;
}
