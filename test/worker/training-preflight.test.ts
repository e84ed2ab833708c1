// Before training: the job's events name the backend and the estimated peak memory against the
// budget; a job whose step cannot fit fails with insufficient_memory, the numbers and what to
// change, before any tensor is made, and the worker goes on to the next job.
import assert from "node:assert/strict";
import { after, before, describe, it, test } from "node:test";
import type { BackendInfo } from "../../worker/engine/backend/backend.js";
import { parseModelConfig } from "../../worker/engine/hf/config.js";
import { isOutOfMemory, trainingPreflight } from "../../worker/training-preflight.js";
import type { RunningWorker } from "../../worker/worker-loop.js";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import { allEvents, isFinished, trainingLines, uploadTraining, waitForJob } from "../support/job-fixtures.js";
import type { TestApp } from "../support/test-app.js";
import { startJobsStack, stopStack } from "../support/test-stack.js";

const QWEN25_05B = parseModelConfig({
  architectures: ["Qwen2ForCausalLM"],
  vocab_size: 151936,
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  tie_word_embeddings: true,
});
const wasm: BackendInfo = {
  name: "wasm",
  requested: "auto",
  nativeMatmul: false,
  linear: "explicit-transpose",
  reason: "test",
  slowFallback: "Training on a slow fallback backend: pure wasm. Fix: npm run build:tfjs-node",
};
const ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

test("a 0.5B full fine-tune at 4 × 2048 does not fit the wasm heap: refused with numbers and advice", () => {
  const r = trainingPreflight({
    backend: wasm,
    config: QWEN25_05B,
    method: "full",
    loraRank: 8,
    loraTargets: ALL,
    loraDropout: 0,
    microBatch: 4,
    seqLen: 2048,
    maxSeqLength: 2048,
    budget: { bytes: 4 * 2 ** 30, source: "the wasm32 heap (4 GiB)" },
  });
  assert.ok(r.failure);
  assert.equal(r.failure.code, "insufficient_memory");
  assert.equal(r.failure.param, "hyperparameters.max_seq_length");
  assert.match(
    r.failure.message,
    /needs about \d+\.\d\d GB \(weights 1\.98 GB, .*\) but the wasm backend has 4\.29 GB/,
  );
  assert.match(
    r.failure.message,
    /lower max_seq_length \(now 2048\); lower WORKER_MICRO_BATCH .*; use LoRA .*; run the worker on the tensorflow backend/,
  );
  assert.equal(r.estimate.gradientCheckpointing, true, "checkpointing was tried before refusing");
  assert.equal(r.events.at(-1)?.level, "warn", "the slow fallback is named");
});

test("a LoRA job that fits only with checkpointing gets it, and says so", () => {
  const input = {
    backend: { ...wasm, nativeMatmul: true, linear: "matmul" as const, slowFallback: undefined },
    config: QWEN25_05B,
    method: "lora" as const,
    loraRank: 8,
    loraTargets: ALL,
    loraDropout: 0,
    microBatch: 1,
    seqLen: 64,
    maxSeqLength: 64,
  };
  const roomy = trainingPreflight({ ...input, budget: { bytes: 64e9, source: "test" } });
  assert.equal(roomy.estimate.gradientCheckpointing, false);
  const tight = trainingPreflight({
    ...input,
    budget: { bytes: roomy.estimate.totalBytes - 1, source: "test" },
  });
  assert.equal(tight.failure, null);
  assert.equal(tight.estimate.gradientCheckpointing, true);
  assert.match(
    tight.events[0].message,
    /^Training backend: wasm \+ OpenBLAS matmul; estimated peak memory .* gradient checkpointing on$/,
  );
  assert.equal(tight.events.length, 1, "no slow-fallback warning on wasm + OpenBLAS");
});

test("out-of-memory errors are recognised as backends word them", () => {
  for (const m of [
    "Aborted(). Build with -sASSERTIONS for more info.",
    "memory access out of bounds",
    "OOM when allocating tensor",
  ]) {
    assert.ok(isOutOfMemory(new Error(m)), m);
  }
  assert.ok(!isOutOfMemory(new Error("label 5 at row 0 is outside the vocabulary")));
});

for (const target of testDatabases()) {
  describe(`memory preflight through the API [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let model: string;
    let worker: RunningWorker;

    before(async () => {
      ({ db, app, worker, model } = await startJobsStack(target));
    });
    after(() => stopStack({ worker, app, db }));

    it("a job over WORKER_MEMORY_BUDGET fails with insufficient_memory; the next one trains", async () => {
      const file = await uploadTraining(app.client, trainingLines(12));
      const hyperparameters = { n_epochs: 1, max_seq_length: 64 };
      process.env.WORKER_MEMORY_BUDGET = "1M";
      let refused: Awaited<ReturnType<typeof waitForJob>>;
      try {
        const job = await app.client.fineTuning.jobs.create({
          model,
          training_file: file,
          method: { type: "supervised", supervised: { hyperparameters } },
        });
        refused = await waitForJob(app.client, job.id, isFinished);
      } finally {
        delete process.env.WORKER_MEMORY_BUDGET;
      }
      assert.equal(refused.status, "failed");
      assert.equal(refused.error?.code, "insufficient_memory");
      assert.match(
        refused.error!.message,
        /^One training step needs about .* but the \w+ backend has 0\.00 GB \(WORKER_MEMORY_BUDGET\)/,
      );
      const events = await allEvents(app.client, refused.id, 100);
      assert.ok(events.some((e) => /^Training backend: /.test(e.message)));
      assert.ok(!events.some((e) => e.type === "metrics"), "refused before any step");

      const next = await app.client.fineTuning.jobs.create({
        model,
        training_file: file,
        method: { type: "supervised", supervised: { hyperparameters } },
      });
      const done = await waitForJob(app.client, next.id, isFinished);
      assert.equal(done.status, "succeeded", JSON.stringify(done.error));
      const stated = (await allEvents(app.client, next.id, 100)).find((e) =>
        /^Training backend: /.test(e.message),
      );
      assert.ok(stated, "the backend is stated in every job's events");
      assert.equal(typeof (stated!.data as Record<string, unknown>).estimated_peak_bytes, "number");
    });
  });
}
