// Merging and stacking LoRA adapters on the llama fixture: PEFT's adapter merged into the base
// weights gives the adapter path's logits; an adapter trained on top of a merged parent equals
// the composed single adapter on the plain base; a merged model saved whole loads back with the
// same logits.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { composeAdapterFolders, mergeAdapterIntoBase } from "../../../../worker/engine/lora/merge-adapter.js";
import type { CausalLM } from "../../../../worker/engine/model/causal-lm.js";
import { loadModel } from "../../../../worker/engine/model/load-model.js";
import { FIXTURE, packedRows, useBackend } from "../train/train-fixture.js";

const ADAPTER = path.join(FIXTURE, "adapter");
let tmp: string;
before(async () => {
  await useBackend();
  tmp = await mkdtemp(path.join(tmpdir(), "merge-adapter-"));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const batch = packedRows(2, 16, 4);

async function logits(model: CausalLM): Promise<Float32Array> {
  const t = model.forward(batch);
  const data = (await t.data()) as Float32Array;
  t.dispose();
  return data;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** A second adapter with random B (rank 2, q/v/down only), written in PEFT's layout. */
async function secondAdapter(dir: string): Promise<void> {
  const m = await loadModel(FIXTURE, {
    lora: { r: 2, alpha: 6, dropout: 0, targetModules: ["q_proj", "v_proj", "down_proj"] },
    seed: 9,
  });
  for (const [name, v] of m.trainableParams)
    if (name.includes("lora_B")) v.assign(tf.randomNormal(v.shape, 0, 0.3, "float32", 5));
  await m.saveAdapter(dir, "llama");
  m.dispose();
}

test("a merged adapter gives the adapter path's logits; merging changes them", async () => {
  const withAdapter = await loadModel(FIXTURE, { adapterDir: ADAPTER });
  const merged = await loadModel(FIXTURE);
  const plain = await logits(merged);
  await mergeAdapterIntoBase(merged, ADAPTER);
  const a = await logits(withAdapter);
  const b = await logits(merged);
  assert.ok(maxDiff(a, b) <= 1e-4, `merged vs adapter: ${maxDiff(a, b)}`);
  assert.ok(maxDiff(plain, b) > 1e-2, "the adapter moves the logits");
  withAdapter.dispose();
  merged.dispose();
});

test("parent merged + child adapter = the composed adapter on the base; saved whole it loads back the same", async () => {
  const child = path.join(tmp, "child");
  const composed = path.join(tmp, "composed");
  await secondAdapter(child);
  const settings = await composeAdapterFolders(ADAPTER, child, composed, "llama");
  assert.equal(settings.r, 4 + 2);
  const stacked = await loadModel(FIXTURE);
  await mergeAdapterIntoBase(stacked, ADAPTER);
  await stacked.loadAdapter(child);
  const viaComposed = await loadModel(FIXTURE, { adapterDir: composed });
  const a = await logits(stacked);
  const b = await logits(viaComposed);
  assert.ok(maxDiff(a, b) <= 1e-4, `stacked vs composed: ${maxDiff(a, b)}`);

  const whole = await loadModel(FIXTURE);
  await mergeAdapterIntoBase(whole, composed);
  const folder = path.join(tmp, "merged");
  await whole.saveFullModel(folder);
  const reloaded = await loadModel(folder);
  const c = await logits(reloaded);
  assert.ok(maxDiff(b, c) <= 1e-4, `merged folder vs adapter path: ${maxDiff(b, c)}`);
  for (const m of [stacked, viaComposed, whole, reloaded]) m.dispose();
});
