// POST /v1/fine_tuning/jobs: every create-time 400 names its `param`; data problems only the
// worker finds (after tokenizing) fail the job with OpenAI's `error`, and truncation warnings;
// list with metadata filters and pagination; cancel / pause / resume of jobs no worker holds.
// The api's own check of a new job's files is in job-validation-step.test.ts. PGlite and Postgres.
import assert from "node:assert/strict";
import { cp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI, { toFile } from "openai";
import { readTarArchive } from "../../../src/store/models/adapter-archive.js";
import type { RunningWorker } from "../../../worker/worker-loop.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import {
  isFinished,
  startTestWorker,
  tinyModelsDir,
  trainingLines,
  uploadTraining,
  waitForJob,
} from "../../support/job-fixtures.js";
import type { TestApp } from "../../support/test-app.js";
import { startTinyModelStack, stopStack } from "../../support/test-stack.js";

async function expect400(promise: Promise<unknown>, param: string | null, message?: RegExp): Promise<void> {
  const err = await promise.then(
    () => assert.fail("expected a 400"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof OpenAI.BadRequestError, `expected BadRequestError, got ${err}`);
  assert.equal(err.param, param, `param of: ${err.message}`);
  if (message) assert.match(err.message, message);
}

for (const target of testDatabases()) {
  describe(`fine-tuning job creation [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let model: string;
    let training: string;

    before(async () => {
      ({ db, app, model } = await startTinyModelStack(target));
      training = await uploadTraining(app.client, trainingLines(12));
    });
    after(() => stopStack({ app, db }));

    const create = (body: Record<string, unknown>) =>
      app.client.fineTuning.jobs.create({
        model,
        training_file: training,
        ...body,
      } as OpenAI.FineTuning.JobCreateParams);

    it("refuses each bad field with a 400 naming it", async () => {
      await expect400(create({ model: "no-such-model" }), "model", /not available/);
      await expect400(create({ model: "../etc" }), "model");
      // a model folder whose architecture the engine refuses
      const { dir } = await tinyModelsDir();
      const odd = join(dir, "odd-architecture");
      await cp(join(dir, model), odd, { recursive: true });
      const config = JSON.parse(await readFile(join(odd, "config.json"), "utf8"));
      await writeFile(
        join(odd, "config.json"),
        JSON.stringify({ ...config, architectures: ["GPT2LMHeadModel"], model_type: "gpt2" }),
      );
      await expect400(create({ model: "odd-architecture" }), "model", /GPT2LMHeadModel/);
      await rm(odd, { recursive: true, force: true });
      await expect400(create({ training_file: "file-missing" }), "training_file", /no such file/);
      await expect400(create({ validation_file: "file-missing" }), "validation_file");
      const batch = await app.client.files.create({
        file: await toFile(Buffer.from("{}\n"), "b.jsonl"),
        purpose: "batch",
      });
      await expect400(create({ training_file: batch.id }), "training_file", /purpose 'batch'/);
      const other = await app.newProject();
      const foreign = await uploadTraining(other.client, trainingLines(12));
      await expect400(create({ training_file: foreign }), "training_file");
      await expect400(create({ method: { type: "reinforcement" } }), "method.type", /not supported/);
      await expect400(
        create({ method: { type: "dpo", dpo: { hyperparameters: { beta: 0 } } } }),
        "method.dpo.hyperparameters.beta",
      );
      await expect400(create({ method: { type: "unsupervised" } }), "method.type");
      await expect400(create({ suffix: "x".repeat(65) }), "suffix");
      await expect400(create({ suffix: "a:b" }), "suffix");
      await expect400(create({ seed: -1 }), "seed");
      await expect400(
        create({ metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }),
        "metadata",
      );
      await expect400(create({ integrations: [{ type: "slack" }] }), "integrations.0");
      await expect400(create({ hyperparameters: { n_epochs: 0 } }), "hyperparameters.n_epochs");
      await expect400(create({ hyperparameters: { batch_size: 257 } }), "hyperparameters.batch_size");
      await expect400(
        create({ hyperparameters: { learning_rate_multiplier: -1 } }),
        "hyperparameters.learning_rate_multiplier",
      );
      await expect400(
        create({ hyperparameters: { lora_rank: 8 } }),
        "hyperparameters.lora_rank",
        /Unrecognized/,
      );
      const sup = (hp: Record<string, unknown>) => ({
        method: { type: "supervised", supervised: { hyperparameters: hp } },
      });
      const p = "method.supervised.hyperparameters";
      await expect400(create(sup({ n_epochs: "many" })), `${p}.n_epochs`);
      await expect400(create(sup({ lora_rank: 0 })), `${p}.lora_rank`);
      await expect400(create(sup({ lora_dropout: 1 })), `${p}.lora_dropout`);
      await expect400(create(sup({ target_modules: ["attn"] })), `${p}.target_modules`);
      await expect400(create(sup({ max_seq_length: 4 })), `${p}.max_seq_length`);
      await expect400(create(sup({ lr_scheduler: "step" })), `${p}.lr_scheduler`);
      await expect400(create(sup({ packing: "yes" })), `${p}.packing`);
      await expect400(create(sup({ warmup_ratio: 2 })), `${p}.warmup_ratio`);
      await expect400(
        create({ ...sup({ n_epochs: 1 }), hyperparameters: { n_epochs: 2 } }),
        "hyperparameters",
      );
      await expect400(
        app.client.fineTuning.jobs.create({ training_file: training } as never),
        "model",
        /Missing required/,
      );
      assert.equal((await app.client.fineTuning.jobs.list()).data.length, 0, "no job was created");
    });

    it("lists newest first with after/limit and metadata[k]=v filters", async () => {
      const a = await create({ metadata: { team: "red" } });
      const b = await create({ metadata: { team: "blue", env: "ci" } });
      const c = await create({ integrations: [{ type: "wandb", wandb: { project: "p1", tags: ["x"] } }] });
      assert.deepEqual(
        c.integrations,
        [{ type: "wandb", wandb: { project: "p1", tags: ["x"] } }],
        "stored and echoed",
      );
      const all = await app.client.fineTuning.jobs.list({ limit: 2 });
      assert.deepEqual(
        all.data.map((j) => j.id),
        [c.id, b.id],
      );
      assert.equal(all.has_more, true);
      const ids: string[] = [];
      for await (const j of app.client.fineTuning.jobs.list({ limit: 1 })) ids.push(j.id);
      assert.deepEqual(ids, [c.id, b.id, a.id]);
      const blue = await app.client.fineTuning.jobs.list({ metadata: { team: "blue" } });
      assert.deepEqual(
        blue.data.map((j) => j.id),
        [b.id],
      );
      const none = await app.client.fineTuning.jobs.list({ metadata: { team: "green" } });
      assert.equal(none.data.length, 0);
      // cancel / pause / resume without a worker; finished jobs refuse with a 400 (never 409)
      assert.equal((await app.client.fineTuning.jobs.pause(a.id)).status, "paused");
      assert.equal((await app.client.fineTuning.jobs.resume(a.id)).status, "queued");
      await expect400(app.client.fineTuning.jobs.resume(a.id), "fine_tuning_job_id", /status is 'queued'/);
      for (const j of [a, b, c]) {
        const cancelled = await app.client.fineTuning.jobs.cancel(j.id);
        assert.equal(cancelled.status, "cancelled");
        assert.ok(cancelled.finished_at !== null);
      }
      await expect400(app.client.fineTuning.jobs.cancel(a.id), "fine_tuning_job_id", /cannot be cancelled/);
      await expect400(app.client.fineTuning.jobs.pause(a.id), "fine_tuning_job_id");
      const missing = await app.client.fineTuning.jobs.retrieve("ftjob-nope").then(
        () => 200,
        (e: { status: number }) => e.status,
      );
      assert.equal(missing, 404);
    });

    describe("the worker's full check of the tokenized data", () => {
      let worker: RunningWorker;
      before(async () => {
        worker = await startTestWorker(db.handle, (await tinyModelsDir()).dir);
      });
      after(async () => {
        await worker?.stop();
      });

      const failedJob = async (content: string, body: Record<string, unknown> = {}) => {
        const file = await uploadTraining(app.client, content);
        const job = await create({ training_file: file, ...body });
        return waitForJob(app.client, job.id, isFinished);
      };

      it("truncated and dropped examples are warnings, the job still trains", async () => {
        const lines = trainingLines(12).trim().split("\n");
        const example = (question: string, answer: string) =>
          JSON.stringify({
            messages: [
              { role: "user", content: question },
              { role: "assistant", content: answer },
            ],
          });
        // a prompt longer than the row: nothing trainable survives (dropped); a long answer: cut (truncated)
        lines.push(
          example(`Question ${"with many words ".repeat(8)}`, "Yes."),
          example("Q?", `Answer ${"word ".repeat(20)}`),
        );
        const file = await uploadTraining(app.client, `${lines.join("\n")}\n`);
        const job = await create({
          training_file: file,
          method: {
            type: "supervised",
            supervised: { hyperparameters: { n_epochs: 1, max_seq_length: 40 } },
          },
        });
        const done = await waitForJob(app.client, job.id, isFinished);
        assert.equal(done.status, "succeeded", JSON.stringify(done.error));
        const events = (await app.client.fineTuning.jobs.listEvents(job.id, { limit: 100 })).data;
        const warnings = events.filter((e) => e.level === "warn").map((e) => e.message);
        assert.ok(
          warnings.some((w) => /^1 training example\(s\) dropped: .*line 13\b/.test(w)),
          JSON.stringify(warnings),
        );
        assert.ok(
          warnings.some((w) => /^1 training example\(s\) truncated to max_seq_length 40/.test(w)),
          JSON.stringify(warnings),
        );
        assert.ok(events.some((e) => /packing efficiency \d+(\.\d)?%/.test(e.message)));
      });

      it("full_finetune: the archive holds the whole model (config.json + model.safetensors)", async () => {
        const job = await create({
          method: {
            type: "supervised",
            supervised: { hyperparameters: { n_epochs: 1, max_seq_length: 64, full_finetune: true } },
          },
        });
        const done = await waitForJob(app.client, job.id, isFinished);
        assert.equal(done.status, "succeeded", JSON.stringify(done.error));
        const res = await fetch(`${app.baseURL}/fine_tuning/jobs/${job.id}/adapter`, {
          headers: { authorization: `Bearer ${app.apiKey}` },
        });
        const names = (await readTarArchive(new Uint8Array(await res.arrayBuffer()))).map((e) => e.name);
        assert.ok(
          names.includes("config.json") && names.includes("model.safetensors"),
          JSON.stringify(names),
        );
      });

      it("nothing trainable after truncation: the job fails naming max_seq_length", async () => {
        const long = Array.from({ length: 12 }, (_, i) =>
          JSON.stringify({
            messages: [
              { role: "user", content: `A long question number ${i} ${"with many words ".repeat(6)}` },
              { role: "assistant", content: "Yes." },
            ],
          }),
        ).join("\n");
        const job = await failedJob(long, {
          method: { type: "supervised", supervised: { hyperparameters: { max_seq_length: 16 } } },
        });
        assert.equal(job.status, "failed");
        assert.equal(job.error?.param, "training_file");
        assert.match(job.error!.message, /no trainable token left after truncation to max_seq_length 16/);
        assert.match(job.error!.message, /line 1\b/);
      });
    });
  });
}
