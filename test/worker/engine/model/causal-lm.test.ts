import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import type { TokenBatch } from "../../../../worker/engine/data/batch.js";
import type { CausalLM } from "../../../../worker/engine/model/causal-lm.js";
import { loadModel } from "../../../../worker/engine/model/load-model.js";
import { computeGradients } from "../../../../worker/engine/train/compute-gradients.js";
import { sftObjective } from "../../../../worker/engine/train/sft-objective.js";
import { padded } from "../../../support/padded-batch.js";

const fixtureDir = new URL("../../../fixtures/llama", import.meta.url).pathname;
const qwenDir = new URL("../../../fixtures/qwen2", import.meta.url).pathname;
const golden = JSON.parse(readFileSync(path.join(fixtureDir, "golden.json"), "utf8"));
const qwenGolden = JSON.parse(readFileSync(path.join(qwenDir, "golden.json"), "utf8"));

before(async () => {
  await tf.setBackend("cpu");
});

const goldenBatch = () =>
  padded(
    (golden.batch.input_ids as number[][]).map((ids, b) => ({
      ids: ids.slice(0, golden.batch.seq_lens[b]),
      labels: golden.batch.labels[b].slice(0, golden.batch.seq_lens[b]),
    })),
  );

async function values(t: tf.Tensor): Promise<Float32Array> {
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/**
 * Loss, counts and gradients through the training path (computeGradients with the SFT objective),
 * over the batch's rows in one micro-batch, or in the given groups of rows (gradient accumulation).
 */
async function gradValues(model: CausalLM, batch: TokenBatch, groups?: number[][]) {
  const objective = sftObjective(model, batch);
  const rows = groups ?? [Array.from({ length: batch.batchSize }, (_, i) => i)];
  const r = await computeGradients(
    model,
    objective,
    rows.map((g) => objective.select(g)),
    { training: false },
  );
  assert.ok(r?.grads && r.stats);
  const out: Record<string, Float32Array> = {};
  for (const [k, g] of Object.entries(r.grads)) out[k] = await values(g);
  const tokenCount = r.stepCounts[0]!;
  const result = {
    lossSum: (await values(r.loss))[0] * tokenCount,
    correct: (await values(r.stats))[0],
    tokenCount,
    grads: out,
  };
  tf.dispose([r.loss, r.stats, r.grads]);
  return result;
}

describe("CausalLM", () => {
  test("a fresh LoRA adapter (B = 0) leaves the logits unchanged; A is U(-1/√in, 1/√in)", async () => {
    const base = await loadModel(fixtureDir);
    const lora = await loadModel(fixtureDir, { lora: { r: 4, alpha: 8, dropout: 0 }, seed: 3 });
    const batch = goldenBatch();
    assert.equal(maxDiff(await values(base.forward(batch)), await values(lora.forward(batch))), 0);
    assert.equal(lora.trainableParams.size, 2 * 7 * 2);
    const a = await values(
      tf.clone(
        lora.trainableParams.get("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight") as tf.Tensor,
      ),
    );
    const bound = 1 / Math.sqrt(128);
    assert.ok(a.every((x) => Math.abs(x) <= bound) && a.some((x) => Math.abs(x) > bound / 2));
    const b = await values(
      tf.clone(
        lora.trainableParams.get("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight") as tf.Tensor,
      ),
    );
    assert.ok(b.every((x) => x === 0));
    base.dispose();
    lora.dispose();
  });

  test("same seed → same LoRA init; other seed → different", async () => {
    const key = "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight";
    const [m1, m2, m3] = await Promise.all(
      [1, 1, 2].map((seed) => loadModel(fixtureDir, { lora: { r: 2, alpha: 4, dropout: 0 }, seed })),
    );
    const [a1, a2, a3] = await Promise.all(
      [m1, m2, m3].map((m) => values(tf.clone(m.trainableParams.get(key) as tf.Tensor))),
    );
    assert.deepEqual(a1, a2);
    assert.notDeepEqual(a1, a3);
    for (const m of [m1, m2, m3]) m.dispose();
  });

  test("target modules: only the chosen projections get LoRA pairs", async () => {
    const m = await loadModel(fixtureDir, {
      lora: { r: 2, alpha: 4, dropout: 0, targetModules: ["q_proj", "v_proj"] },
    });
    const names = [...m.trainableParams.keys()];
    assert.equal(names.length, 2 * 2 * 2);
    assert.ok(names.every((n) => /self_attn\.(q|v)_proj\.lora_[AB]\.weight$/.test(n)));
    m.dispose();
  });

  test("gradient accumulation: micro-batches of one row each sum to the full-batch loss and gradients", async () => {
    const m = await loadModel(fixtureDir, { adapterDir: path.join(fixtureDir, "adapter") });
    const full = await gradValues(m, goldenBatch());
    const split = await gradValues(m, goldenBatch(), [[0], [1]]);
    assert.equal(split.tokenCount, full.tokenCount);
    assert.ok(Math.abs(split.lossSum - full.lossSum) < 1e-4);
    assert.equal(split.correct, full.correct);
    for (const [k, g] of Object.entries(full.grads)) {
      const scale = Math.max(...g.map(Math.abs));
      assert.ok(maxDiff(split.grads[k], g) <= 1e-4 * scale + 1e-9, k);
    }
    m.dispose();
  });

  test("packed row and the same examples padded give the same loss and gradients", async () => {
    const m = await loadModel(fixtureDir, { adapterDir: path.join(fixtureDir, "adapter") });
    const p = golden.packed;
    const packed: TokenBatch = {
      batchSize: 1,
      seqLen: 16,
      inputIds: Int32Array.from(p.input_ids[0]),
      labels: Int32Array.from(p.labels[0]),
      positionIds: Int32Array.from(p.position_ids[0]),
      segmentIds: Int32Array.from(p.segment_ids[0]),
    };
    const separate = padded((p.segments as number[][]).map((ids) => ({ ids, labels: ids })));
    const a = await gradValues(m, packed);
    const b = await gradValues(m, separate);
    assert.equal(a.tokenCount, b.tokenCount);
    assert.ok(Math.abs(a.lossSum - b.lossSum) < 1e-4, `${a.lossSum} vs ${b.lossSum}`);
    for (const k of Object.keys(a.grads)) {
      const scale = Math.max(...b.grads[k].map(Math.abs));
      assert.ok(maxDiff(a.grads[k], b.grads[k]) <= 1e-3 * scale, k);
    }
    m.dispose();
  });

  test("LoRA dropout: off unless training, seeded, and the RNG state restores the same masks", async () => {
    const m = await loadModel(fixtureDir, { adapterDir: path.join(fixtureDir, "adapter"), seed: 5 });
    assert.ok(m.loraSettings);
    m.loraSettings.dropout = 0.5;
    const batch = goldenBatch();
    const evalA = await values(m.forward(batch));
    const evalB = await values(m.forward(batch));
    assert.deepEqual(evalA, evalB);
    const state = m.rngState();
    const t1 = await values(m.forward(batch, { training: true }));
    const t2 = await values(m.forward(batch, { training: true }));
    assert.ok(maxDiff(t1, evalA) > 1e-3, "dropout changes the logits");
    assert.ok(maxDiff(t1, t2) > 1e-3, "a new mask each call");
    m.setRngState(state);
    assert.deepEqual(await values(m.forward(batch, { training: true })), t1);
    m.dispose();
  });

  test("disableAdapter runs the base model", async () => {
    const base = await loadModel(fixtureDir);
    const m = await loadModel(fixtureDir, { adapterDir: path.join(fixtureDir, "adapter") });
    const batch = goldenBatch();
    assert.equal(
      maxDiff(await values(m.forward(batch, { disableAdapter: true })), await values(base.forward(batch))),
      0,
    );
    assert.ok(maxDiff(await values(m.forward(batch)), await values(base.forward(batch))) > 0.5);
    base.dispose();
    m.dispose();
  });

  test("full fine-tuning: every weight is trainable (tied head once) and gets a gradient; saved folder reloads", async () => {
    const m = await loadModel(qwenDir, { fullFinetune: true });
    assert.ok(!m.trainableParams.has("lm_head.weight"), "tied head is the embedding");
    assert.equal(
      [...m.trainableParams.values()].reduce((n, v) => n + v.size, 0),
      qwenGolden.model.num_parameters,
    );
    const batch = goldenBatch();
    const r = await gradValues(m, batch);
    assert.deepEqual(Object.keys(r.grads).sort(), [...m.trainableParams.keys()].sort());
    assert.ok(Object.values(r.grads).every((g) => g.some((x) => x !== 0)));
    const embedGrad = r.grads["model.embed_tokens.weight"];
    assert.ok(embedGrad.some((x) => x !== 0));
    const dir = await mkdtemp(path.join(tmpdir(), "full-save-"));
    try {
      await m.saveFullModel(dir);
      const reloaded = await loadModel(dir);
      assert.equal(maxDiff(await values(reloaded.forward(batch)), await values(m.forward(batch))), 0);
      reloaded.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    m.dispose();
  });

  test("sequenceLogprobs: per-row sums of the golden token log-probabilities, differentiable", async () => {
    const m = await loadModel(fixtureDir, { adapterDir: path.join(fixtureDir, "adapter") });
    const batch = goldenBatch();
    const base = await values(m.sequenceLogprobs(batch, { disableAdapter: true }));
    (golden.batch.token_losses as (number | null)[][]).forEach((row, b) => {
      const expected = -row.reduce<number>((s, x) => s + (x ?? 0), 0);
      assert.ok(Math.abs(base[b] - expected) < 1e-4, `row ${b}: ${base[b]} vs ${expected}`);
    });
    const { value, grads } = tf.variableGrads(
      () => tf.sum(m.sequenceLogprobs(batch)),
      [...m.trainableParams.values()],
    );
    assert.ok(Math.abs((await values(value))[0] + golden.lora.loss * golden.batch.loss_num_tokens) < 1e-3);
    assert.equal(Object.keys(grads).length, 28);
    tf.dispose(Object.values(grads));
    m.dispose();
  });

  test("no tensors leak across forward, computeGradients and evaluate", async () => {
    const m = await loadModel(fixtureDir, { lora: { r: 2, alpha: 4, dropout: 0.1 } });
    const batch = goldenBatch();
    const step = async () => {
      await values(m.forward(batch, { training: true }));
      const objective = sftObjective(m, batch);
      const r = await computeGradients(m, objective, [objective.select([0, 1])]);
      tf.dispose([r?.loss ?? [], r?.stats ?? [], r?.grads ?? {}]);
      await m.evaluate(batch);
    };
    await step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await step();
    assert.equal(tf.memory().numTensors, before);
    m.dispose();
  });

  test("weights that disagree with config.json are refused with the tensor named", async () => {
    await assert.rejects(
      loadModel(fixtureDir, { configFile: "../qwen2/config.json" }),
      /missing weight "model.layers.0.self_attn.q_proj.bias"/,
    );
  });
});
