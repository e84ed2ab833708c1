// Random-weight Hugging Face folders at published models' shapes, for benchmarks and the
// REAL_SIZE test: the real vocabulary size (so the LM head costs what it costs), N(0, 0.02²)
// weights, unit norms, and the tiny model's ChatML tokenizer (ids past it are rows no text
// reaches). No download, no Python.
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expectedWeightShapes } from "../worker/engine/hf/checkpoint-layout.js";
import { parseModelConfig } from "../worker/engine/hf/config.js";
import { type TensorToWrite, writeSafetensors } from "../worker/engine/hf/safetensors.js";
import { ensureTinyModel, TINY_MODEL_ID } from "../worker/engine/hf/tiny-model.js";
import { Rng } from "../worker/engine/train/rng.js";

export const SHAPES = {
  "smollm2-135m": {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: 49152,
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    rope_theta: 100000.0,
    tie_word_embeddings: true,
    max_position_embeddings: 8192,
    rms_norm_eps: 1e-5,
  },
  "qwen2.5-0.5b": {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    vocab_size: 151936,
    hidden_size: 896,
    intermediate_size: 4864,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    rope_theta: 1000000.0,
    tie_word_embeddings: true,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
  },
  "qwen2.5-1.5b": {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    vocab_size: 151936,
    hidden_size: 1536,
    intermediate_size: 8960,
    num_hidden_layers: 28,
    num_attention_heads: 12,
    num_key_value_heads: 2,
    rope_theta: 1000000.0,
    tie_word_embeddings: true,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
  },
} as const;
export type ShapeName = keyof typeof SHAPES;

export function isShapeName(s: string): s is ShapeName {
  return Object.hasOwn(SHAPES, s);
}

/**
 * `<modelsDir>/<shape>` as a loadable model folder (written once; later calls reuse it).
 * Returns the model id (the folder name).
 */
export async function ensureRealSizeModel(modelsDir: string, shape: ShapeName): Promise<string> {
  const target = path.join(modelsDir, shape);
  if (await stat(path.join(target, "model.safetensors")).catch(() => null)) return shape;
  const tinyDir = path.join(tmpdir(), "tunehouse-tiny-for-real-size");
  await mkdir(tinyDir, { recursive: true });
  await ensureTinyModel(tinyDir);
  const tiny = path.join(tinyDir, TINY_MODEL_ID);
  const tinyConfig = JSON.parse(await readFile(path.join(tiny, "config.json"), "utf8"));
  const raw = {
    ...SHAPES[shape],
    hidden_act: "silu",
    bos_token_id: tinyConfig.bos_token_id,
    eos_token_id: tinyConfig.eos_token_id,
    pad_token_id: tinyConfig.pad_token_id,
    torch_dtype: "float32",
  };
  const config = parseModelConfig(raw);
  const staging = `${target}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const rng = Rng.fromSeed(135);
  const weights = new Map<string, TensorToWrite>();
  for (const [name, shapeOf] of expectedWeightShapes(config)) {
    const data = new Float32Array(shapeOf.reduce((a, b) => a * b, 1));
    if (shapeOf.length === 1 && !name.endsWith(".bias")) data.fill(1);
    else if (shapeOf.length > 1) {
      // uniform with the std of N(0, 0.02²): cheap to draw for half a billion values
      const a = 0.02 * Math.sqrt(3);
      for (let i = 0; i < data.length; i++) data[i] = (rng.nextFloat() * 2 - 1) * a;
    }
    weights.set(name, { shape: shapeOf, data });
  }
  await writeSafetensors(path.join(staging, "model.safetensors"), weights, { format: "pt" });
  weights.clear();
  await writeFile(path.join(staging, "config.json"), `${JSON.stringify(raw, null, 2)}\n`);
  for (const f of ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]) {
    await copyFile(path.join(tiny, f), path.join(staging, f));
  }
  await rename(staging, target).catch(async (e) => {
    await rm(staging, { recursive: true, force: true });
    if (!(await stat(target).catch(() => null))) throw e;
  });
  return shape;
}
