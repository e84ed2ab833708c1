import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { initGoldenBackend } from "../../../../scripts/golden/check-golden.js";
import {
  generate,
  logSoftmax,
  nextTokenLogits,
  sampleToken,
  topK,
} from "../../../../worker/engine/generation/generate.js";
import { ensureTinyModel } from "../../../../worker/engine/hf/tiny-model.js";
import type { CausalLM } from "../../../../worker/engine/model/causal-lm.js";
import { loadModel } from "../../../../worker/engine/model/load-model.js";
import { Rng } from "../../../../worker/engine/train/rng.js";

let modelsDir: string;
let model: CausalLM;
const prompt = [297, 117, 115, 263, 10, 72, 101, 279, 111, 298, 10, 297, 97, 115];

before(async () => {
  await initGoldenBackend();
  modelsDir = await mkdtemp(path.join(tmpdir(), "generate-test-"));
  model = await loadModel(path.join(modelsDir, await ensureTinyModel(modelsDir)));
});
after(async () => {
  model.dispose();
  await rm(modelsDir, { recursive: true, force: true });
});

describe("generate", () => {
  test("greedy with the KV cache equals argmax of a full forward pass at every step", async () => {
    const out = await generate(model, prompt, { maxNewTokens: 10, temperature: 0, keepLogits: true });
    assert.equal(out.ids.length, 10);
    assert.equal(out.finishReason, "length");
    const all = [...prompt, ...out.ids];
    const T = all.length;
    const logits = model.forward({
      batchSize: 1,
      seqLen: T,
      inputIds: Int32Array.from(all),
      labels: new Int32Array(T).fill(-100),
      positionIds: Int32Array.from({ length: T }, (_, i) => i),
      segmentIds: new Int32Array(T),
    });
    const full = (await logits.data()) as Float32Array;
    logits.dispose();
    const V = model.config.vocabSize;
    out.stepLogits?.forEach((step, s) => {
      const row = full.subarray((prompt.length - 1 + s) * V, (prompt.length + s) * V);
      let d = 0;
      for (let v = 0; v < V; v++) d = Math.max(d, Math.abs(step[v] - row[v]));
      assert.ok(d < 1e-4, `step ${s}: cached vs full max diff ${d}`);
    });
    assert.deepEqual(await nextTokenLogits(model, prompt), out.stepLogits?.[0]);
  });

  test("sampling is seeded: same seed, same tokens; another seed, other tokens", async () => {
    const opts = { maxNewTokens: 16, temperature: 1.5, topP: 1 };
    const a = await generate(model, prompt, { ...opts, seed: 7 });
    const b = await generate(model, prompt, { ...opts, seed: 7 });
    const c = await generate(model, prompt, { ...opts, seed: 8 });
    assert.deepEqual(a.ids, b.ids);
    assert.notDeepEqual(a.ids, c.ids);
  });

  test("a tiny top_p keeps only the most likely token: equals greedy", async () => {
    const greedy = await generate(model, prompt, { maxNewTokens: 6, temperature: 0 });
    const nucleus = await generate(model, prompt, { maxNewTokens: 6, temperature: 1, topP: 1e-9, seed: 3 });
    assert.deepEqual(nucleus.ids, greedy.ids);
  });

  test("stops at a stop id (not included in ids) with finish reason stop", async () => {
    const greedy = await generate(model, prompt, { maxNewTokens: 8, temperature: 0 });
    const stopId = greedy.ids[3];
    const firstAt = greedy.ids.indexOf(stopId);
    const out = await generate(model, prompt, { maxNewTokens: 8, temperature: 0, stopTokenIds: [stopId] });
    assert.equal(out.finishReason, "stop");
    assert.deepEqual(out.ids, greedy.ids.slice(0, firstAt));
    assert.equal(out.tokens.at(-1)?.id, stopId);
  });

  test("logprobs: chosen token's logprob, top alternatives sorted, probabilities ≤ 1", async () => {
    const out = await generate(model, prompt, { maxNewTokens: 4, temperature: 0, topLogprobs: 5 });
    for (const t of out.tokens) {
      assert.equal(t.topLogprobs?.length, 5);
      assert.equal(t.topLogprobs?.[0].id, t.id, "greedy picks the most likely token");
      assert.equal(t.topLogprobs?.[0].logprob, t.logprob);
      const lps = t.topLogprobs?.map((x) => x.logprob) ?? [];
      assert.deepEqual(
        lps,
        [...lps].sort((x, y) => y - x),
      );
      assert.ok(lps.reduce((s, x) => s + Math.exp(x), 0) <= 1 + 1e-9 && t.logprob < 0);
    }
  });

  test("onToken returning false stops early; no tensors leak", async () => {
    const before = tf.memory().numTensors;
    let seen = 0;
    const out = await generate(model, prompt, {
      maxNewTokens: 10,
      temperature: 0,
      onToken: () => ++seen < 3,
    });
    assert.equal(out.ids.length, 3);
    assert.equal(tf.memory().numTensors, before);
  });

  test("refuses bad options", async () => {
    await assert.rejects(generate(model, [], { maxNewTokens: 1 }), /empty/);
    await assert.rejects(generate(model, prompt, { maxNewTokens: 0 }), /maxNewTokens/);
    await assert.rejects(generate(model, prompt, { maxNewTokens: 1, topP: 0 }), /top_p/);
    await assert.rejects(generate(model, prompt, { maxNewTokens: 1, topLogprobs: 21 }), /top_logprobs/);
  });
});

describe("sampling helpers", () => {
  test("topK equals a full sort (ties by lower id)", () => {
    const rng = Rng.fromSeed(1);
    const lp = Float64Array.from({ length: 500 }, () => Math.round(rng.nextFloat() * 50) / 10);
    const sorted = Array.from(lp.keys()).sort((a, b) => lp[b] - lp[a] || a - b);
    assert.deepEqual(
      topK(lp, 7).map((t) => t.id),
      sorted.slice(0, 7),
    );
    assert.deepEqual(topK(lp, 0), []);
  });

  test("sampleToken follows softmax(logits / T), and top_p draws only from the nucleus", () => {
    const logits = Float32Array.from([2, 1, 0, -1]);
    const probs = [...logSoftmax(logits)].map(Math.exp);
    const rng = Rng.fromSeed(2);
    const counts = [0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, 1, 1, rng)]++;
    for (const [i, c] of counts.entries()) {
      assert.ok(Math.abs(c / n - probs[i]) < 0.015, `id ${i}: ${c / n} vs ${probs[i]}`);
    }
    // probs ≈ [0.64, 0.24, 0.09, 0.03]: top_p 0.8 keeps ids 0 and 1
    const nucleus = new Set<number>();
    for (let i = 0; i < 2000; i++) nucleus.add(sampleToken(logits, 1, 0.8, rng));
    assert.deepEqual([...nucleus].sort(), [0, 1]);
    // a low temperature sharpens towards the argmax
    let top = 0;
    for (let i = 0; i < 2000; i++) top += sampleToken(logits, 0.1, 1, rng) === 0 ? 1 : 0;
    assert.ok(top > 1990);
  });
});
