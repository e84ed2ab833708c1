// DPO jobs through the OpenAI SDK on the real engine and the tiny default model: create with
// method.dpo → succeeded with beta written back, TRL's reward metrics in the events and the result
// CSV, the implicit reward margin positive and growing, the tuned model more likely to give the
// preferred answers than its reference, served by chat; wrong-format files fail the job in
// OpenAI's shape; a job whose worker dies resumes from its checkpoint.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { eq, sql } from "drizzle-orm";
import OpenAI from "openai";
import { fineTuningJobs } from "../../../src/store/db/schema.js";
import { buildPreferenceDataset } from "../../../worker/engine/data/build-dataset.js";
import { resolveChatTemplate } from "../../../worker/engine/hf/chat-template.js";
import { loadTokenizer } from "../../../worker/engine/hf/tokenizer.js";
import { loadModel } from "../../../worker/engine/model/load-model.js";
import { dpoObjective, referenceLogprobs } from "../../../worker/engine/train/dpo-objective.js";
import { evaluateObjective } from "../../../worker/engine/train/train-loop.js";
import type { RunningWorker } from "../../../worker/worker-loop.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import {
  allEvents,
  downloadArchive,
  isFinished,
  preferenceLines,
  startTestWorker,
  trainingLines,
  uploadTraining,
  waitForEvent,
  waitForJob,
} from "../../support/job-fixtures.js";
import type { TestApp } from "../../support/test-app.js";
import { startJobsStack, stopStack } from "../../support/test-stack.js";

const DPO_METHOD = (hp: Record<string, unknown>) =>
  ({
    type: "dpo",
    dpo: { hyperparameters: { max_seq_length: 64, warmup_ratio: 0, lora_dropout: 0, ...hp } },
  }) as const;

type Events = Awaited<ReturnType<typeof allEvents>>;
const metricsOf = (events: Events) =>
  events.filter((e) => e.type === "metrics").map((e) => e.data as Record<string, number>);

for (const target of testDatabases()) {
  describe(`DPO jobs [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let worker: RunningWorker;
    let model: string;
    let modelsDir: string;

    before(async () => {
      ({ db, app, worker, model, modelsDir } = await startJobsStack(target));
    });
    after(() => stopStack({ worker, app, db }));

    it("trains to succeeded: beta written back, reward metrics, margin positive and growing, preferred answers likelier, served", async () => {
      const lines = preferenceLines(12);
      const training = await uploadTraining(app.client, lines);
      const validation = await uploadTraining(app.client, preferenceLines(4, 3), "valid.jsonl");
      const created = await app.client.fineTuning.jobs.create({
        model,
        training_file: training,
        validation_file: validation,
        suffix: "dpo",
        seed: 3,
        method: DPO_METHOD({ n_epochs: 4, batch_size: 2, learning_rate_multiplier: 10, beta: "auto" }),
      } as OpenAI.FineTuning.JobCreateParams);
      assert.equal(created.method?.type, "dpo");
      assert.equal(created.method?.dpo?.hyperparameters?.beta, "auto");
      const job = await waitForJob(app.client, created.id, isFinished);
      assert.equal(job.status, "succeeded", JSON.stringify(job.error));
      assert.equal(job.method?.dpo?.hyperparameters?.beta, 0.1, "auto beta resolved and written back");
      assert.equal(job.hyperparameters.n_epochs, 4);
      const hp = job.method?.dpo?.hyperparameters as Record<string, unknown>;
      assert.equal(hp.loss_type, "sigmoid");
      assert.equal(hp.rpo_alpha, null);

      const events = await allEvents(app.client, job.id, 100);
      const metrics = metricsOf(events);
      assert.equal(metrics.length, 24);
      for (const m of metrics) {
        for (const key of [
          "train_loss",
          "train_rewards_chosen",
          "train_rewards_rejected",
          "train_rewards_accuracies",
          "train_rewards_margins",
        ])
          assert.equal(typeof m[key], "number", key);
      }
      assert.ok(
        metrics.some((m) => typeof m.valid_rewards_margins === "number" && typeof m.valid_loss === "number"),
      );
      assert.ok(Math.abs(metrics[0]!.train_loss! - Math.LN2) < 1e-4, "a fresh adapter starts at ln 2");
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const firstEpoch = mean(metrics.slice(0, 6).map((m) => m.train_rewards_margins!));
      const lastEpoch = mean(metrics.slice(-6).map((m) => m.train_rewards_margins!));
      assert.ok(
        lastEpoch > 0 && lastEpoch > firstEpoch,
        `margin grows: epoch 1 ${firstEpoch}, epoch 4 ${lastEpoch}`,
      );

      const csv = (await (await app.client.files.content(job.result_files[0]!)).text()).trim().split("\n");
      assert.equal(
        csv[0],
        "step,train_loss,valid_loss,train_rewards_chosen,train_rewards_rejected,train_rewards_accuracies,train_rewards_margins," +
          "valid_rewards_chosen,valid_rewards_rejected,valid_rewards_accuracies,valid_rewards_margins",
      );
      assert.equal(csv.length, 25);
      assert.ok((await app.client.fineTuning.jobs.checkpoints.list(job.id)).data.length > 0);

      // the downloaded adapter, on the training pairs: margin over the reference > 0
      const dir = await mkdtemp(join(tmpdir(), "dpo-adapter-"));
      try {
        await downloadArchive(app, `/fine_tuning/jobs/${job.id}/adapter`, dir);
        const folder = join(modelsDir, model);
        const tuned = await loadModel(folder, { adapterDir: dir });
        try {
          const tokenizer = await loadTokenizer(folder);
          const template = resolveChatTemplate(tokenizer.chatTemplate, {
            specialTokens: tokenizer.specialTokensMap,
          });
          const { pairs } = buildPreferenceDataset(lines.trim().split("\n"), tokenizer, template, {
            maxSeqLength: 64,
          });
          const reference = await referenceLogprobs(tuned, pairs, tokenizer.padId);
          const objective = dpoObjective(
            tuned,
            pairs,
            reference,
            { beta: 0.1, lossType: "sigmoid", rpoAlpha: null },
            tokenizer.padId,
          );
          const r = (await evaluateObjective(
            objective,
            pairs.map((_, i) => i),
            4,
          ))!;
          assert.ok(
            r.metrics.rewards_margins! > 0,
            `margin over the training pairs ${r.metrics.rewards_margins}`,
          );
          assert.ok(r.metrics.rewards_chosen! > 0, "preferred answers likelier than under the reference");
          assert.ok(r.loss < Math.LN2);
        } finally {
          tuned.dispose();
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }

      const reply = await app.client.chat.completions.create({
        model: job.fine_tuned_model!,
        messages: [{ role: "user", content: "Capital 2?" }],
        temperature: 0,
        max_completion_tokens: 8,
      });
      assert.equal(reply.model, job.fine_tuned_model);
      assert.equal(typeof reply.choices[0]!.message.content, "string");
    });

    it("chat lines in a DPO job, preference lines in a supervised job: the job fails in OpenAI's shape", async () => {
      const chat = await uploadTraining(app.client, trainingLines(12));
      const pairs = await uploadTraining(app.client, preferenceLines(12));
      const a = await app.client.fineTuning.jobs.create({
        model,
        training_file: chat,
        method: DPO_METHOD({}),
      } as OpenAI.FineTuning.JobCreateParams);
      const b = await app.client.fineTuning.jobs.create({
        model,
        training_file: pairs,
        method: { type: "supervised" },
      });
      const failedA = await waitForJob(app.client, a.id, isFinished);
      const failedB = await waitForJob(app.client, b.id, isFinished);
      assert.equal(failedA.status, "failed");
      assert.equal(failedA.error?.code, "invalid_training_file");
      assert.equal(failedA.error?.param, "training_file");
      assert.match(failedA.error!.message, /chat examples; the DPO method needs preference examples/);
      assert.equal(failedB.status, "failed");
      assert.equal(failedB.error?.code, "invalid_training_file");
      assert.match(failedB.error!.message, /preference examples, which train with the DPO method/);
    });

    it("refuses bad DPO hyperparameters at create with a 400 naming them", async () => {
      const training = await uploadTraining(app.client, preferenceLines(12));
      for (const [hp, param] of [
        [{ beta: -1 }, "method.dpo.hyperparameters.beta"],
        [{ loss_type: "kto" }, "method.dpo.hyperparameters.loss_type"],
        [{ packing: true }, "method.dpo.hyperparameters.packing"],
        [{ rpo_alpha: "x" }, "method.dpo.hyperparameters.rpo_alpha"],
      ] as const) {
        await assert.rejects(
          app.client.fineTuning.jobs.create({
            model,
            training_file: training,
            method: { type: "dpo", dpo: { hyperparameters: hp } },
          } as OpenAI.FineTuning.JobCreateParams),
          (err: unknown) =>
            err instanceof OpenAI.BadRequestError && (err.error as { param?: string }).param === param,
          JSON.stringify(hp),
        );
      }
    });

    it("a DPO job whose worker dies after a checkpoint is resumed from it and succeeds", async () => {
      await worker.stop();
      const outcomes: string[] = [];
      const w = await startTestWorker(db.handle, modelsDir, {
        leaseSeconds: 2,
        onJobDone: (_, o) => outcomes.push(o),
      });
      try {
        const training = await uploadTraining(app.client, preferenceLines(12));
        const job = await app.client.fineTuning.jobs.create({
          model,
          training_file: training,
          method: DPO_METHOD({ n_epochs: 3, batch_size: 1, learning_rate_multiplier: 5 }),
        } as OpenAI.FineTuning.JobCreateParams);
        await waitForEvent(app.client, job.id, /^Checkpoint created at step \d+/);
        await db.handle.db
          .update(fineTuningJobs)
          .set({ workerId: "dead-worker", leaseExpiresAt: sql`now() - interval '1 second'` })
          .where(eq(fineTuningJobs.id, job.id));
        const done = await waitForJob(app.client, job.id, isFinished);
        assert.equal(done.status, "succeeded", JSON.stringify(done.error));
        assert.equal(outcomes[0], "lost");
        const events = await allEvents(app.client, job.id, 100);
        const resume = events.findIndex((e) => /^Resuming from the checkpoint at step \d+$/.test(e.message));
        assert.ok(resume > 0, JSON.stringify(events.map((e) => e.message)));
        const at = Number(/step (\d+)$/.exec(events[resume]!.message)![1]);
        const after = metricsOf(events.slice(resume)).map((m) => m.step);
        assert.deepEqual(
          after,
          Array.from({ length: 36 - at }, (_, i) => at + 1 + i),
        );
        const csv = (await (await app.client.files.content(done.result_files[0]!)).text()).trim().split("\n");
        assert.deepEqual(
          csv.slice(1).map((r) => Number(r.split(",")[0])),
          Array.from({ length: 36 }, (_, i) => i + 1),
        );
      } finally {
        await w.stop();
        worker = await startTestWorker(db.handle, modelsDir);
      }
    });
  });
}
