// Serving adapters over one shared base model (served-adapter.ts, the forward's `adapter` option,
// model-server.ts): the adapter path gives the logits of the merged weights W + scaling·B·A,
// requests for different adapters interleave without seeing each other's weights, and the LRU
// frees adapters it evicts once no request holds them.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { initGoldenBackend } from "../../scripts/golden/check-golden.js";
import { ChatModelServer } from "../../src/serving/model-server.js";
import { readServedAdapter, type ServedAdapter } from "../../src/serving/served-adapter.js";
import { generate } from "../../worker/engine/generation/generate.js";
import { ensureTinyModel } from "../../worker/engine/hf/tiny-model.js";
import type { LoraAdapter } from "../../worker/engine/lora/lora-adapter.js";
import type { CausalLM } from "../../worker/engine/model/causal-lm.js";
import { loadModel } from "../../worker/engine/model/load-model.js";
import { writeMergedModel } from "../support/merged-weights.js";

const FIXTURE = path.resolve("test/fixtures/llama");
const ADAPTER = path.join(FIXTURE, "adapter");
const IDS = [1, 17, 250, 3, 99, 42, 7, 311, 5, 64, 128, 200];

let scratch: string;
before(async () => {
  await initGoldenBackend();
  scratch = await mkdtemp(path.join(tmpdir(), "adapter-serving-"));
});
after(() => rm(scratch, { recursive: true, force: true }));

/** Logits [T, V] of every position of `ids`, through the KV-cache path chat uses. */
async function allLogits(
  model: CausalLM,
  ids: number[],
  adapter?: LoraAdapter | null,
): Promise<Float32Array> {
  const cache = model.newCache();
  try {
    const out = model.forwardCached(ids, cache, { allPositions: true, adapter });
    const data = (await out.data()) as Float32Array;
    out.dispose();
    return data;
  } finally {
    model.disposeCache(cache);
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe("adapters passed per forward over a shared base model", () => {
  let base: CausalLM;
  let merged: CausalLM;
  let peftLoaded: CausalLM;
  let adapter: ServedAdapter;
  before(async () => {
    const mergedDir = await mkdtemp(path.join(scratch, "merged-"));
    assert.equal(await writeMergedModel(FIXTURE, ADAPTER, mergedDir), 14, "7 projections × 2 layers");
    base = await loadModel(FIXTURE);
    merged = await loadModel(mergedDir);
    peftLoaded = await loadModel(FIXTURE, { adapterDir: ADAPTER });
    adapter = await readServedAdapter(base, ADAPTER);
  });
  after(() => {
    adapter.dispose();
    for (const m of [base, merged, peftLoaded]) m.dispose();
  });

  test("adapter path logits = merged weights logits = the engine's loaded adapter", async () => {
    const passed = await allLogits(base, IDS, adapter);
    const viaMerged = await allLogits(merged, IDS);
    const viaEngine = await allLogits(peftLoaded, IDS);
    const plain = await allLogits(base, IDS);
    assert.ok(maxAbsDiff(passed, viaMerged) < 1e-3, `passed vs merged ${maxAbsDiff(passed, viaMerged)}`);
    assert.ok(maxAbsDiff(passed, viaEngine) < 1e-4, `passed vs loadAdapter ${maxAbsDiff(passed, viaEngine)}`);
    assert.ok(maxAbsDiff(passed, plain) > 0.5, "the adapter changes the logits (the fixture's is loud)");
    assert.deepEqual(await allLogits(base, IDS), plain, "the base model is untouched afterwards");
    assert.ok(
      base.adapter === null && base.loraSettings === null,
      "no adapter left mounted on the shared model",
    );
  });

  test("greedy generation with the adapter equals generation on the merged model", async () => {
    const a = await generate(base, IDS, { maxNewTokens: 12, temperature: 0, adapter });
    const b = await generate(merged, IDS, { maxNewTokens: 12, temperature: 0 });
    assert.deepEqual(a.ids, b.ids);
  });

  test("interleaved generations with and without the adapter each equal their sequential run", async () => {
    const opts = { maxNewTokens: 10, temperature: 0.9, seed: 3 };
    const soloTuned = await generate(base, IDS, { ...opts, adapter });
    const soloBase = await generate(base, IDS, { ...opts, adapter: null });
    assert.notDeepEqual(soloTuned.ids, soloBase.ids);
    const [tuned, plain] = await Promise.all([
      generate(base, IDS, { ...opts, adapter }),
      generate(base, IDS, { ...opts, adapter: null }),
    ]);
    assert.deepEqual(tuned.ids, soloTuned.ids);
    assert.deepEqual(plain.ids, soloBase.ids);
  });

  test("an adapter whose shapes do not fit the base is refused, naming the tensor", async () => {
    const tinyDir = await mkdtemp(path.join(scratch, "tiny-"));
    const tiny = await loadModel(path.join(tinyDir, await ensureTinyModel(tinyDir)));
    try {
      await assert.rejects(
        readServedAdapter(tiny, ADAPTER),
        /adapter_model\.safetensors: tensor "base_model\.model\.model\.layers\.0\.[a-z_.]+\.lora_[AB]\.weight" has shape \[\d+,\d+\], the model needs/,
      );
    } finally {
      tiny.dispose();
    }
  });
});

describe("ChatModelServer", () => {
  let modelsDir: string;
  const adapterDirs: string[] = [];
  before(async () => {
    modelsDir = await mkdtemp(path.join(scratch, "models-"));
    const folder = path.join(modelsDir, await ensureTinyModel(modelsDir));
    // two different adapters for the tiny model (B random, so they change the output)
    for (const seed of [1, 2]) {
      const m = await loadModel(folder, { lora: { r: 4, alpha: 8, dropout: 0 }, seed });
      for (const [name, v] of m.trainableParams)
        if (name.includes("lora_B")) v.assign(tf.randomNormal(v.shape, 0, 0.5, "float32", seed));
      const dir = path.join(scratch, `adapter-${seed}`);
      await m.saveAdapter(dir);
      adapterDirs.push(dir);
      m.dispose();
    }
  });

  test("one base copy, adapters loaded once, evicted past the bound and freed when released", async () => {
    const server = new ChatModelServer({ adapterCacheSize: 1 });
    try {
      const base = await server.base("tiny-chatml", path.join(modelsDir, "tiny-chatml"));
      assert.equal(await server.base("tiny-chatml", path.join(modelsDir, "tiny-chatml")), base);
      let materialized = 0;
      const source = (i: number) => ({
        key: `adapter-${i}`,
        materialize: async () => {
          materialized++;
          return { dir: adapterDirs[i] };
        },
      });
      const prompt = [297, 117, 115, 263, 10];
      const baseLogits = await allLogits(base.model, prompt);

      const first = await server.tuned(base, source(0));
      assert.equal(first.value.kind, "adapter");
      const again = await server.tuned(base, source(0));
      assert.equal(materialized, 1, "a cached adapter is not read again");
      again.release();
      const tensorsWithOne = tf.memory().numTensors;

      const second = await server.tuned(base, source(1));
      assert.deepEqual(server.cachedTunedKeys(), ["tiny-chatml\u0000adapter-1"]);
      // the evicted adapter still serves the request holding it
      const adapter0 = first.value.kind === "adapter" ? first.value.adapter : null;
      const logits0 = await allLogits(base.model, prompt, adapter0);
      assert.ok(maxAbsDiff(logits0, baseLogits) > 1e-3);
      const withBoth = tf.memory().numTensors;
      assert.ok(withBoth > tensorsWithOne);
      first.release();
      assert.equal(tf.memory().numTensors, tensorsWithOne, "released after eviction → freed");
      second.release();
      assert.equal(materialized, 2);
    } finally {
      await server.close();
    }
  });
});
