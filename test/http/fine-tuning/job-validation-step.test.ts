// The api's validation step right after create: with no worker running, a new job moves
// validating_files → queued (files fine) or → failed with OpenAI's `error` (too few examples,
// invalid lines, preference lines in a supervised job, a bad validation file). A job the api
// never validated (it died after create) is claimed by a worker once the fallback delay has
// passed, and the worker gives the same error for the same file. PGlite and Postgres.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { eq, sql } from "drizzle-orm";
import type OpenAI from "openai";
import {
  type CreateJobBody,
  parseCreateJobRequest,
} from "../../../src/http/fine-tuning/create-job-request.js";
import { fineTuningJobs } from "../../../src/store/db/schema.js";
import { releaseJob } from "../../../src/store/jobs/job-lease.js";
import { createJob } from "../../../src/store/jobs/job-repository.js";
import { claimJob, VALIDATION_FALLBACK_SECONDS } from "../../../src/store/jobs/job-state-machine.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import {
  allEvents,
  isFinished,
  startTestWorker,
  tinyModelsDir,
  trainingLines,
  uploadTraining,
  waitForJob,
} from "../../support/job-fixtures.js";
import type { TestApp } from "../../support/test-app.js";
import { startTinyModelStack, stopStack } from "../../support/test-stack.js";

const notValidating = (job: { status: string }) => job.status !== "validating_files";

/** Twelve preference pairs: DPO data, which a supervised job cannot train on. */
function preferenceLines(): string {
  let content = "";
  for (let i = 0; i < 12; i++) {
    content += `${JSON.stringify({
      input: { messages: [{ role: "user", content: `Question ${i}?` }] },
      preferred_output: [{ role: "assistant", content: "Good." }],
      non_preferred_output: [{ role: "assistant", content: "Bad." }],
    })}\n`;
  }
  return content;
}

/** Twelve good lines with an assistant-less example at lines 4 and 9. */
function linesWithTwoInvalid(): string {
  const bad = JSON.stringify({ messages: [{ role: "user", content: "only a question" }] });
  const lines = trainingLines(12).split("\n");
  lines.splice(3, 0, bad);
  lines.splice(8, 0, bad);
  return lines.join("\n");
}

for (const target of testDatabases()) {
  describe(`the api validates a new job's files [${target.name}]`, () => {
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
    const failedWithoutWorker = async (content: string, body: Record<string, unknown> = {}) => {
      const file = await uploadTraining(app.client, content);
      const job = await create({ training_file: file, ...body });
      assert.equal(job.status, "validating_files", "create answers before validating");
      return waitForJob(app.client, job.id, notValidating, 10_000);
    };
    /** A job as the api's create leaves it when it dies before its validation step. */
    const strandedJob = async (
      trainingFile: string,
      ageSeconds: number,
      method?: CreateJobBody["method"],
    ) => {
      const req = parseCreateJobRequest({
        model,
        training_file: trainingFile,
        ...(method ? { method } : {}),
      });
      const row = await createJob(db.handle.db, app.projectId, req);
      await db.handle.db
        .update(fineTuningJobs)
        .set({ createdAt: sql`now() - make_interval(secs => ${ageSeconds}::double precision)` })
        .where(eq(fineTuningJobs.id, row.id));
      return row.id;
    };

    it("a worker claims a job still validating_files only after the fallback delay", async () => {
      const id = await strandedJob(training, 0);
      assert.equal(
        await claimJob(db.handle.db, "early-worker", 60),
        null,
        "the api's validation step comes first",
      );
      await db.handle.db
        .update(fineTuningJobs)
        .set({
          createdAt: sql`now() - make_interval(secs => ${VALIDATION_FALLBACK_SECONDS + 1}::double precision)`,
        })
        .where(eq(fineTuningJobs.id, id));
      const claimed = await claimJob(db.handle.db, "late-worker", 60);
      assert.equal(claimed?.job.id, id);
      assert.equal(claimed.previousStatus, "validating_files");
      assert.equal(claimed.job.status, "validating_files", "the worker validates before it starts");
      await releaseJob(db.handle.db, id, "late-worker");
      await app.client.fineTuning.jobs.cancel(id);
    });

    it("files fine: the job shows queued before any worker runs", async () => {
      const created = await create({});
      assert.equal(created.status, "validating_files");
      const queued = await waitForJob(app.client, created.id, notValidating, 10_000);
      assert.equal(queued.status, "queued");
      assert.equal(queued.error, null);
      const messages = (await allEvents(app.client, created.id)).map((e) => e.message);
      assert.deepEqual(messages, [
        `Created fine-tuning job: ${created.id}`,
        `Validating training file: ${training}`,
        "Files validated, moving job to queued state",
      ]);
      // no worker will take it in this suite's later tests
      assert.equal((await app.client.fineTuning.jobs.cancel(created.id)).status, "cancelled");
    });

    it("fewer than 10 examples: invalid_n_examples with no worker running", async () => {
      const job = await failedWithoutWorker(trainingLines(3));
      assert.equal(job.status, "failed");
      assert.deepEqual(job.error, {
        code: "invalid_n_examples",
        message: "Training file has 3 example(s), but must have at least 10 examples",
        param: "training_file",
      });
      assert.ok(job.finished_at !== null);
      const last = (await app.client.fineTuning.jobs.listEvents(job.id, { limit: 1 })).data[0]!;
      assert.equal(last.level, "error");
      assert.equal(last.message, `The job failed: ${job.error!.message}`);
    });

    it("invalid lines: invalid_training_file naming the lines", async () => {
      const job = await failedWithoutWorker(linesWithTwoInvalid());
      assert.equal(job.status, "failed");
      assert.equal(job.error?.code, "invalid_training_file");
      assert.equal(job.error?.param, "training_file");
      assert.match(job.error!.message, /^Training file has 2 invalid example\(s\): line 4: .+; line 9: /);
    });

    it("a bad validation file: invalid_validation_file with param validation_file", async () => {
      const validation = await uploadTraining(app.client, linesWithTwoInvalid(), "valid.jsonl");
      const created = await create({ validation_file: validation });
      const job = await waitForJob(app.client, created.id, notValidating, 10_000);
      assert.equal(job.status, "failed");
      assert.equal(job.error?.code, "invalid_validation_file");
      assert.equal(job.error?.param, "validation_file");
      assert.match(job.error!.message, /^Validation file has 2 invalid example\(s\): line 4: .+; line 9: /);
    });

    it("preference lines in a supervised job: a clear invalid_training_file", async () => {
      const job = await failedWithoutWorker(preferenceLines());
      assert.equal(job.status, "failed");
      assert.deepEqual(job.error, {
        code: "invalid_training_file",
        message:
          "Training file holds preference examples, which train with the DPO method, not supervised fine-tuning",
        param: "training_file",
      });
    });

    describe("the worker's fallback for a job the api never validated", () => {
      it("gives the same error as the api for the same file (one function for both)", async () => {
        const cases = [linesWithTwoInvalid(), trainingLines(3), preferenceLines()];
        const byApi = [];
        const stranded = [];
        for (const content of cases) {
          byApi.push(await failedWithoutWorker(content));
          stranded.push(
            await strandedJob(await uploadTraining(app.client, content), VALIDATION_FALLBACK_SECONDS + 1),
          );
        }
        const worker = await startTestWorker(db.handle, (await tinyModelsDir()).dir);
        try {
          for (const [i, id] of stranded.entries()) {
            const byWorker = await waitForJob(app.client, id, isFinished, 60_000);
            assert.equal(byWorker.status, "failed");
            assert.equal(byApi[i]!.status, "failed");
            assert.deepEqual(byWorker.error, byApi[i]!.error);
          }
        } finally {
          await worker.stop();
        }
      });

      it("a stranded job with good files is validated and started by the worker", async () => {
        const id = await strandedJob(training, VALIDATION_FALLBACK_SECONDS + 1, {
          type: "supervised",
          supervised: { hyperparameters: { n_epochs: 1, batch_size: 4, max_seq_length: 64 } },
        });
        const worker = await startTestWorker(db.handle, (await tinyModelsDir()).dir);
        try {
          const job = await waitForJob(app.client, id, isFinished, 120_000);
          assert.equal(job.status, "succeeded", JSON.stringify(job.error));
          const messages = (await allEvents(app.client, id, 100)).map((e) => e.message);
          assert.ok(
            !messages.includes("Files validated, moving job to queued state"),
            "the api never validated it",
          );
          assert.equal(messages.filter((m) => m === "Fine-tuning job started").length, 1);
          assert.ok(
            messages.some((m) => /^Training data: 12 examples/.test(m)),
            JSON.stringify(messages),
          );
        } finally {
          await worker.stop();
        }
      });
    });
  });
}
