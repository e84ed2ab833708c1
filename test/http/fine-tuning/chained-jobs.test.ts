// Fine-tuning a fine-tuned model through the SDK, and merged-weights downloads: SFT, then DPO on
// the SFT model (the reference is the parent: the first DPO loss is ln 2); the chain is recorded
// in the archive; the served (composed) adapter equals the parent merged + the own adapter; the
// merged folder loads back with the adapter path's logits; another project's model is unknown.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import type { TokenBatch } from "../../../worker/engine/data/batch.js";
import { mergeAdapterIntoBase } from "../../../worker/engine/lora/merge-adapter.js";
import type { CausalLM } from "../../../worker/engine/model/causal-lm.js";
import { loadModel } from "../../../worker/engine/model/load-model.js";
import type { RunningWorker } from "../../../worker/worker-loop.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import {
  allEvents,
  downloadArchive,
  isFinished,
  preferenceLines,
  trainingLines,
  uploadTraining,
  waitForJob,
} from "../../support/job-fixtures.js";
import type { TestApp } from "../../support/test-app.js";
import { startJobsStack, stopStack } from "../../support/test-stack.js";

const batch: TokenBatch = {
  batchSize: 1,
  seqLen: 12,
  inputIds: Int32Array.from([1, 60, 61, 62, 70, 71, 72, 73, 80, 81, 82, 83]),
  labels: new Int32Array(12).fill(-100),
  positionIds: Int32Array.from({ length: 12 }, (_, i) => i),
  segmentIds: new Int32Array(12),
};

async function logits(model: CausalLM): Promise<Float32Array> {
  const t = model.forward(batch);
  const data = (await t.data()) as Float32Array;
  t.dispose();
  return data;
}

const maxDiff = (a: Float32Array, b: Float32Array) =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

for (const target of testDatabases()) {
  describe(`fine-tuning a fine-tuned model, merged downloads [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let worker: RunningWorker;
    let model: string;
    let modelsDir: string;
    let tmp: string;

    before(async () => {
      ({ db, app, worker, model, modelsDir } = await startJobsStack(target));
      tmp = await mkdtemp(join(tmpdir(), "chained-"));
    });
    after(async () => {
      await stopStack({ worker, app, db });
      await rm(tmp, { recursive: true, force: true });
    });

    const download = (path: string, into: string) => downloadArchive(app, path, into);

    it("SFT → DPO on the SFT model: chain recorded, served adapter = parent merged + own adapter, merged weights load back", async () => {
      const sft = await app.client.fineTuning.jobs.create({
        model,
        training_file: await uploadTraining(app.client, trainingLines(12)),
        suffix: "sft",
        method: {
          type: "supervised",
          supervised: {
            hyperparameters: {
              n_epochs: 2,
              batch_size: 4,
              learning_rate_multiplier: 10,
              max_seq_length: 64,
              warmup_ratio: 0,
            },
          },
        },
      } as OpenAI.FineTuning.JobCreateParams);
      const sftDone = await waitForJob(app.client, sft.id, isFinished);
      assert.equal(sftDone.status, "succeeded", JSON.stringify(sftDone.error));
      const parentId = sftDone.fine_tuned_model!;

      const dpo = await app.client.fineTuning.jobs.create({
        model: parentId,
        training_file: await uploadTraining(app.client, preferenceLines(12)),
        suffix: "dpo",
        method: {
          type: "dpo",
          dpo: {
            hyperparameters: {
              n_epochs: 2,
              batch_size: 4,
              learning_rate_multiplier: 10,
              max_seq_length: 64,
              warmup_ratio: 0,
              lora_rank: 4,
              lora_dropout: 0,
            },
          },
        },
      } as OpenAI.FineTuning.JobCreateParams);
      assert.equal(dpo.model, parentId);
      const done = await waitForJob(app.client, dpo.id, isFinished);
      assert.equal(done.status, "succeeded", JSON.stringify(done.error));
      assert.match(done.fine_tuned_model!, new RegExp(`^ft:${model}:[^:]+:dpo:${dpo.id}$`));
      const metrics = (await allEvents(app.client, dpo.id, 100)).filter((e) => e.type === "metrics");
      assert.ok(
        Math.abs((metrics[0]!.data as { train_loss: number }).train_loss - Math.LN2) < 1e-4,
        "the reference is the parent",
      );
      assert.ok((await app.client.models.list()).data.some((m) => m.id === done.fine_tuned_model));

      const adapterDir = join(tmp, "chained-adapter");
      const names = await download(`/fine_tuning/jobs/${dpo.id}/adapter`, adapterDir);
      assert.deepEqual(names, [
        "adapter_config.json",
        "adapter_model.safetensors",
        "own_adapter_config.json",
        "own_adapter_model.safetensors",
        "parents.json",
      ]);
      const parents = JSON.parse(await readFile(join(adapterDir, "parents.json"), "utf8"));
      assert.equal(parents.base_model, model);
      assert.deepEqual(parents.parents, [{ model: parentId, job: sft.id }]);
      const composedConfig = JSON.parse(await readFile(join(adapterDir, "adapter_config.json"), "utf8"));
      assert.equal(composedConfig.r, 8 + 4, "parent rank 8 + own rank 4");
      assert.equal(composedConfig.base_model_name_or_path, model);

      const parentDir = join(tmp, "parent-adapter");
      await download(`/fine_tuning/jobs/${sft.id}/adapter`, parentDir);
      const ownDir = join(tmp, "own-adapter");
      await mkdir(ownDir);
      await writeFile(
        join(ownDir, "adapter_config.json"),
        await readFile(join(adapterDir, "own_adapter_config.json")),
      );
      await writeFile(
        join(ownDir, "adapter_model.safetensors"),
        await readFile(join(adapterDir, "own_adapter_model.safetensors")),
      );
      const folder = join(modelsDir, model);
      const stacked = await loadModel(folder);
      await mergeAdapterIntoBase(stacked, parentDir);
      const parentLogits = await logits(stacked);
      await stacked.loadAdapter(ownDir);
      const served = await loadModel(folder, { adapterDir });
      const a = await logits(stacked);
      const b = await logits(served);
      assert.ok(maxDiff(a, b) <= 1e-4, `composed adapter vs parent merged + own adapter: ${maxDiff(a, b)}`);
      assert.ok(maxDiff(a, parentLogits) > 1e-3, "the DPO adapter changed the parent");

      const mergedDir = join(tmp, "merged");
      const mergedNames = await download(`/fine_tuning/jobs/${dpo.id}/merged`, mergedDir);
      for (const f of [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "parents.json",
      ])
        assert.ok(mergedNames.includes(f), f);
      const merged = await loadModel(mergedDir);
      const c = await logits(merged);
      assert.ok(maxDiff(b, c) <= 1e-4, `merged folder vs adapter path: ${maxDiff(b, c)}`);
      for (const m of [stacked, served, merged]) m.dispose();

      // the SFT model (no chain) as merged weights too
      const sftMerged = join(tmp, "sft-merged");
      assert.ok(!(await download(`/fine_tuning/jobs/${sft.id}/merged`, sftMerged)).includes("parents.json"));
      const m1 = await loadModel(sftMerged);
      const m2 = await loadModel(folder, { adapterDir: parentDir });
      assert.ok(maxDiff(await logits(m1), await logits(m2)) <= 1e-4);
      m1.dispose();
      m2.dispose();

      const reply = await app.client.chat.completions.create({
        model: done.fine_tuned_model!,
        messages: [{ role: "user", content: "Capital 2?" }],
        temperature: 0,
        max_completion_tokens: 6,
      });
      assert.equal(typeof reply.choices[0]!.message.content, "string");

      // a checkpoint of the caller's project is a valid parent too
      const ckpt = (await app.client.fineTuning.jobs.checkpoints.list(sft.id)).data[0]!;
      const fromCkpt = await app.client.fineTuning.jobs.create({
        model: ckpt.fine_tuned_model_checkpoint,
        training_file: await uploadTraining(app.client, trainingLines(12)),
        method: { type: "supervised", supervised: { hyperparameters: { n_epochs: 1, max_seq_length: 64 } } },
      } as OpenAI.FineTuning.JobCreateParams);
      assert.equal(fromCkpt.model, ckpt.fine_tuned_model_checkpoint);
      await app.client.fineTuning.jobs.cancel(fromCkpt.id);

      // another project's tuned model is answered like an unknown model
      const other = await app.newProject();
      const foreignTraining = await uploadTraining(other.client, trainingLines(12));
      const errorOf = async (id: string) => {
        try {
          await other.client.fineTuning.jobs.create({ model: id, training_file: foreignTraining });
        } catch (err) {
          assert.ok(err instanceof OpenAI.BadRequestError);
          const e = err.error as { code: string; param: string; message: string };
          return { status: err.status, code: e.code, param: e.param, message: e.message.replace(id, "<id>") };
        }
        assert.fail("created");
      };
      assert.deepEqual(
        await errorOf(done.fine_tuned_model!),
        await errorOf(`ft:${model}:nobody:x:ftjob-none`),
      );
      const res = await fetch(`${app.baseURL}/fine_tuning/jobs/${dpo.id}/merged`, {
        headers: { Authorization: `Bearer ${other.apiKey}` },
      });
      assert.equal(res.status, 404);
    });
  });
}
