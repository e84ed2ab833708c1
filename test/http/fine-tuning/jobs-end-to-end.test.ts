// The whole flow through the OpenAI SDK on the real engine and the tiny default model: upload →
// create → poll to `succeeded` → events (paginated), checkpoints, result CSV, tuned model in
// /v1/models, adapter downloaded and loaded by the engine → another project sees none of it →
// DELETE the model. On PGlite and, with TEST_DATABASE_URL, on a Postgres server.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type OpenAI from "openai";
import { readTarArchive } from "../../../src/store/models/adapter-archive.js";
import { loadModel } from "../../../worker/engine/model/load-model.js";
import type { RunningWorker } from "../../../worker/worker-loop.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import {
  allEvents,
  isFinished,
  tinyModelsDir,
  trainingLines,
  uploadTraining,
  waitForJob,
} from "../../support/job-fixtures.js";
import type { TestApp, TestProject } from "../../support/test-app.js";
import { startJobsStack, stopStack } from "../../support/test-stack.js";

for (const target of testDatabases()) {
  describe(`fine-tuning end to end [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let worker: RunningWorker;
    let other: TestProject;
    let model: string;
    let jobId: string;
    let tunedModel: string;

    before(async () => {
      ({ db, app, worker, model } = await startJobsStack(target));
      other = await app.newProject();
    });
    after(() => stopStack({ worker, app, db }));

    it("upload → create → succeeded, with auto hyperparameters resolved and written back", async () => {
      const training = await uploadTraining(app.client, trainingLines(12));
      const validation = await uploadTraining(app.client, trainingLines(4, 100), "valid.jsonl");
      const started = Date.now();
      const created = await app.client.fineTuning.jobs.create({
        model,
        training_file: training,
        validation_file: validation,
        suffix: "e2e",
        seed: 7,
        metadata: { purpose: "test" },
        method: {
          type: "supervised",
          supervised: {
            hyperparameters: {
              n_epochs: 2,
              batch_size: 2,
              learning_rate_multiplier: "auto",
              max_seq_length: 64,
              warmup_ratio: 0,
            },
          },
        },
      } as OpenAI.FineTuning.JobCreateParams);
      jobId = created.id;
      assert.match(created.id, /^ftjob-/);
      assert.equal(created.object, "fine_tuning.job");
      assert.equal(created.status, "validating_files");
      assert.equal(created.hyperparameters.learning_rate_multiplier, "auto");
      for (const key of [
        "error",
        "fine_tuned_model",
        "finished_at",
        "trained_tokens",
        "validation_file",
      ] as const) {
        assert.ok(key in created, `${key} present`);
      }
      assert.equal(created.error, null);
      assert.deepEqual(created.metadata, { purpose: "test" });

      const job = await waitForJob(app.client, jobId, isFinished);
      const seconds = (Date.now() - started) / 1000;
      assert.equal(job.status, "succeeded", JSON.stringify(job.error));
      const steps = (await app.client.fineTuning.jobs.checkpoints.list(jobId)).data[0]!.step_number;
      console.log(
        `# [${target.name}] end-to-end job on the tiny model: ${seconds.toFixed(1)} s create → succeeded ` +
          `(12 examples, 2 epochs, ${steps} steps, ${job.trained_tokens} trained tokens)`,
      );
      tunedModel = job.fine_tuned_model!;
      assert.equal(tunedModel, `ft:${model}:${app.projectId}:e2e:${jobId}`);
      assert.equal(job.hyperparameters.n_epochs, 2);
      assert.equal(job.hyperparameters.batch_size, 2);
      // auto multiplier = sqrt(batch/8) rounded to 2 decimals
      assert.equal(job.hyperparameters.learning_rate_multiplier, 0.5);
      const method = job.method as unknown as { supervised: { hyperparameters: Record<string, unknown> } };
      assert.equal(method.supervised.hyperparameters.max_seq_length, 64);
      assert.equal(method.supervised.hyperparameters.lora_rank, 8);
      assert.ok(job.trained_tokens! > 0);
      assert.ok(job.finished_at! >= job.created_at);
      assert.equal(job.result_files.length, 1);
      assert.equal(job.seed, 7);
    });

    it("events: OpenAI's wording, metrics data, paginated newest first", async () => {
      const events = await allEvents(app.client, jobId, 3);
      const messages = events.map((e) => e.message);
      const firstIndex = (re: RegExp) => messages.findIndex((m) => re.test(m));
      const order = [
        /^Created fine-tuning job/,
        /^Validating training file/,
        /^Files validated, moving job to queued state$/,
        /^Training data: 12 examples/,
        /^Fine-tuning job started$/,
        /^Step 1\/\d+: training loss=/,
        /^Checkpoint created at step \d+/,
        /^New fine-tuned model created: ft:/,
        /^The job has successfully completed/,
      ].map(firstIndex);
      assert.ok(
        order.every((i) => i >= 0),
        `missing events: ${JSON.stringify(messages)}`,
      );
      assert.deepEqual(
        [...order].sort((a, b) => a - b),
        order,
        "events in lifecycle order",
      );
      const metrics = events.filter((e) => e.type === "metrics");
      const steps = metrics.map((e) => (e.data as { step: number }).step);
      const total = (metrics[0]!.data as { total_steps: number }).total_steps;
      assert.deepEqual(
        steps,
        Array.from({ length: total }, (_, i) => i + 1),
      );
      const d = metrics.at(-1)!.data as Record<string, number>;
      for (const key of ["step", "total_steps", "train_loss", "train_mean_token_accuracy"])
        assert.equal(typeof d[key], "number");
      assert.ok(
        metrics.some((e) => typeof (e.data as Record<string, unknown>).valid_loss === "number"),
        "validation metrics",
      );
      // newest first, and `after` moves to older events
      const page1 = await app.client.fineTuning.jobs.listEvents(jobId, { limit: 2 });
      assert.equal(page1.data.length, 2);
      assert.equal(page1.has_more, true);
      assert.match(page1.data[0]!.message, /successfully completed/);
      const page2 = await app.client.fineTuning.jobs.listEvents(jobId, {
        limit: 2,
        after: page1.data[1]!.id,
      });
      assert.equal(page2.data[0]!.id, events.at(-3)!.id);
    });

    it("checkpoints: one per epoch, highest step first, with metrics", async () => {
      const page = await app.client.fineTuning.jobs.checkpoints.list(jobId);
      assert.equal(page.data.length, 2);
      const [last, first] = page.data;
      assert.ok(last!.step_number > first!.step_number);
      assert.equal(last!.fine_tuned_model_checkpoint, `${tunedModel}:ckpt-step-${last!.step_number}`);
      assert.equal(last!.fine_tuning_job_id, jobId);
      assert.equal(typeof last!.metrics.train_loss, "number");
      assert.equal(last!.metrics.step, last!.step_number);
    });

    it("result file: purpose fine-tune-results, CSV with one row per step", async () => {
      const job = await app.client.fineTuning.jobs.retrieve(jobId);
      const file = await app.client.files.retrieve(job.result_files[0]!);
      assert.equal(file.purpose, "fine-tune-results");
      const csv = await (await app.client.files.content(file.id)).text();
      const [header, ...rows] = csv.trim().split("\n");
      assert.equal(header, "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy");
      const checkpoints = await app.client.fineTuning.jobs.checkpoints.list(jobId);
      assert.equal(rows.length, checkpoints.data[0]!.step_number);
      rows.forEach((row, i) => {
        const cells = row.split(",");
        assert.equal(Number(cells[0]), i + 1);
        assert.ok(Number.isFinite(Number(cells[1])) && Number(cells[1]) > 0, row);
      });
    });

    it("the tuned model and its checkpoints are listed and retrievable in its project", async () => {
      const ids = (await app.client.models.list()).data.map((m) => m.id);
      assert.ok(ids.includes(model));
      assert.ok(ids.includes(tunedModel));
      assert.equal(ids.filter((id) => id.startsWith(`${tunedModel}:ckpt-step-`)).length, 2);
      const retrieved = await app.client.models.retrieve(tunedModel);
      assert.equal(retrieved.id, tunedModel);
      assert.equal(retrieved.owned_by, app.projectId);
    });

    it("adapter download: one tar with the PEFT files, loadable by the engine", async () => {
      const res = await fetch(`${app.baseURL}/fine_tuning/jobs/${jobId}/adapter`, {
        headers: { authorization: `Bearer ${app.apiKey}` },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/x-tar");
      const entries = await readTarArchive(new Uint8Array(await res.arrayBuffer()));
      assert.deepEqual(
        entries.map((e) => e.name),
        ["adapter_config.json", "adapter_model.safetensors"],
      );
      const dir = await mkdtemp(join(tmpdir(), "adapter-"));
      try {
        for (const e of entries) await writeFile(join(dir, e.name), e.data);
        const { dir: modelsDir } = await tinyModelsDir();
        const loaded = await loadModel(join(modelsDir, model), { adapterDir: dir });
        assert.equal(loaded.loraSettings?.r, 8);
        assert.ok(loaded.trainableParams.size > 0);
        loaded.dispose();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      const ckpt = (await app.client.fineTuning.jobs.checkpoints.list(jobId)).data[1]!;
      const res2 = await fetch(`${app.baseURL}/fine_tuning/jobs/${jobId}/checkpoints/${ckpt.id}/adapter`, {
        headers: { authorization: `Bearer ${app.apiKey}` },
      });
      assert.equal(res2.status, 200);
      assert.equal((await readTarArchive(new Uint8Array(await res2.arrayBuffer()))).length, 2);
    });

    it("another project: jobs, events, checkpoints, models and adapters are 404s", async () => {
      const c = other.client;
      const is404 = async (p: Promise<unknown>) =>
        assert.equal(
          await p.then(
            () => 200,
            (e: { status?: number }) => e.status,
          ),
          404,
        );
      await is404(c.fineTuning.jobs.retrieve(jobId));
      await is404(c.fineTuning.jobs.listEvents(jobId));
      await is404(c.fineTuning.jobs.checkpoints.list(jobId));
      await is404(c.fineTuning.jobs.cancel(jobId));
      await is404(c.fineTuning.jobs.pause(jobId));
      await is404(c.fineTuning.jobs.resume(jobId));
      await is404(c.models.retrieve(tunedModel));
      await is404(c.models.delete(tunedModel));
      const ckpt = (await app.client.fineTuning.jobs.checkpoints.list(jobId)).data[0]!;
      await is404(c.models.retrieve(ckpt.fine_tuned_model_checkpoint));
      for (const path of [
        `fine_tuning/jobs/${jobId}/adapter`,
        `fine_tuning/jobs/${jobId}/checkpoints/${ckpt.id}/adapter`,
      ]) {
        const res = await fetch(`${app.baseURL}/${path}`, {
          headers: { authorization: `Bearer ${other.apiKey}` },
        });
        assert.equal(res.status, 404);
      }
      assert.equal((await c.fineTuning.jobs.list()).data.length, 0);
      assert.ok(!(await c.models.list()).data.some((m) => m.id.startsWith("ft:")));
    });

    it("live event stream: SSE from the start, and after Last-Event-ID", async () => {
      const url = `${app.baseURL}/fine_tuning/jobs/${jobId}/events?stream=true`;
      const headers = { authorization: `Bearer ${app.apiKey}` };
      const res = await fetch(url, { headers });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
      const text = await res.text();
      const ids = [...text.matchAll(/^id: (\S+)$/gm)].map((m) => m[1]);
      const events = await allEvents(app.client, jobId);
      assert.deepEqual(
        ids,
        events.map((e) => e.id),
      );
      assert.match(text, /event: done\ndata: {"status":"succeeded"}/);
      const resumed = await (
        await fetch(url, { headers: { ...headers, "last-event-id": ids[ids.length - 3]! } })
      ).text();
      assert.deepEqual(
        [...resumed.matchAll(/^id: (\S+)$/gm)].map((m) => m[1]),
        ids.slice(-2),
      );
    });

    it("DELETE /v1/models/{id} removes the tuned model and its adapter; base models cannot be deleted", async () => {
      const base = await app.client.models.delete(model).then(
        () => 200,
        (e: { status: number }) => e.status,
      );
      assert.equal(base, 400);
      const deleted = await app.client.models.delete(tunedModel);
      assert.deepEqual(deleted, { id: tunedModel, object: "model", deleted: true });
      assert.equal(
        await app.client.models.retrieve(tunedModel).then(
          () => 200,
          (e: { status: number }) => e.status,
        ),
        404,
      );
      const res = await fetch(`${app.baseURL}/fine_tuning/jobs/${jobId}/adapter`, {
        headers: { authorization: `Bearer ${app.apiKey}` },
      });
      assert.equal(res.status, 404);
      // the job keeps its record; checkpoints stay usable
      assert.equal((await app.client.fineTuning.jobs.retrieve(jobId)).status, "succeeded");
    });
  });
}
