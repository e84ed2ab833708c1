// Real jobs on the tiny model send their webhooks: a job that trains to the end sends
// fine_tuning.job.running, one checkpoint.created per epoch and fine_tuning.job.succeeded; a
// cancelled job sends .cancelled; a file with too few examples sends .failed. Every delivery
// arrives at a real HTTP receiver and is verified with the official SDK's webhooks.unwrap.
// PGlite and Postgres.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sql } from "drizzle-orm";
import type OpenAI from "openai";
import { fineTuningJobs } from "../../../src/store/db/schema.js";
import {
  startWebhookDispatcher,
  type WebhookDispatcher,
} from "../../../worker/webhooks/webhook-dispatcher.js";
import type { RunningWorker } from "../../../worker/worker-loop.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import {
  isFinished,
  trainingLines,
  uploadTraining,
  waitForEvent,
  waitForJob,
} from "../../support/job-fixtures.js";
import type { TestApp } from "../../support/test-app.js";
import { startJobsStack, stopStack } from "../../support/test-stack.js";
import { startReceiver, type WebhookReceiver } from "../../support/webhook-receiver.js";

interface Event {
  id: string;
  object: string;
  type: string;
  created_at: number;
  data: { id: string };
}

for (const target of testDatabases()) {
  describe(`fine-tuning job webhooks [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let worker: RunningWorker;
    let dispatcher: WebhookDispatcher;
    let receiver: WebhookReceiver;
    let secret: string;
    let model: string;
    /** verified events, in arrival order */
    const verified: Event[] = [];

    before(async () => {
      ({ db, app, worker, model } = await startJobsStack(target, { config: { webhookAllowPrivate: true } }));
      receiver = await startReceiver();
      const res = await fetch(`${app.baseURL}/webhook_endpoints`, {
        method: "POST",
        headers: { authorization: `Bearer ${app.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ url: receiver.url }),
      });
      secret = ((await res.json()) as { secret: string }).secret;
      dispatcher = await startWebhookDispatcher({ database: db.handle, allowPrivate: true, pollMs: 200 });
    });
    after(async () => {
      await worker?.stop();
      await dispatcher?.stop();
      await receiver?.close();
      await stopStack({ app, db });
    });

    /** waits for the job's event of `type`, verifying every delivery that came meanwhile */
    const eventFor = async (jobId: string, type: string, timeoutMs = 60_000): Promise<Event> => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        while (verified.length < receiver.received.length) {
          const r = receiver.received[verified.length];
          verified.push((await app.client.webhooks.unwrap(r.body, r.headers, secret)) as unknown as Event);
        }
        const found = verified.find((e) => e.data.id === jobId && e.type === type);
        if (found) return found;
        if (Date.now() > until)
          assert.fail(
            `no ${type} for ${jobId}; got ${JSON.stringify(verified.map((e) => [e.type, e.data.id]))}`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    it("a job trained to the end sends running, checkpoint.created per epoch, then succeeded", async () => {
      const training = await uploadTraining(app.client, trainingLines(12));
      const job = await app.client.fineTuning.jobs.create({
        model,
        training_file: training,
        method: {
          type: "supervised",
          supervised: { hyperparameters: { n_epochs: 2, batch_size: 4, max_seq_length: 48 } },
        },
      } as OpenAI.FineTuning.JobCreateParams);
      const succeeded = await eventFor(job.id, "fine_tuning.job.succeeded", 120_000);
      const finished = await app.client.fineTuning.jobs.retrieve(job.id);
      assert.equal(finished.status, "succeeded");
      assert.match(succeeded.id, /^evt_/);
      assert.equal(succeeded.object, "event");
      assert.deepEqual(succeeded.data, { id: job.id });
      assert.ok(
        Math.abs(succeeded.created_at - finished.finished_at!) <= 2,
        "created_at is when the job succeeded",
      );
      const ofJob = verified.filter((e) => e.data.id === job.id).map((e) => e.type);
      assert.deepEqual(ofJob, [
        "fine_tuning.job.running",
        "fine_tuning.job.checkpoint.created",
        "fine_tuning.job.checkpoint.created",
        "fine_tuning.job.succeeded",
      ]);
      const r = receiver.received.find((x) => x.headers["webhook-id"] === succeeded.id)!;
      assert.ok(r, "webhook-id is the event id");
    });

    it("a cancelled job sends fine_tuning.job.cancelled", async () => {
      const training = await uploadTraining(app.client, trainingLines(20));
      const job = await app.client.fineTuning.jobs.create({
        model,
        training_file: training,
        method: {
          type: "supervised",
          supervised: { hyperparameters: { n_epochs: 3, batch_size: 1, max_seq_length: 48 } },
        },
      } as OpenAI.FineTuning.JobCreateParams);
      await waitForEvent(app.client, job.id, /^Step 1\//);
      await app.client.fineTuning.jobs.cancel(job.id);
      const event = await eventFor(job.id, "fine_tuning.job.cancelled");
      assert.deepEqual(event.data, { id: job.id });
      await waitForJob(app.client, job.id, isFinished);
      await new Promise((r) => setTimeout(r, 500));
      await eventFor(job.id, "fine_tuning.job.cancelled");
      const kinds = verified.filter((e) => e.data.id === job.id).map((e) => e.type);
      assert.ok(
        !kinds.includes("fine_tuning.job.succeeded") && !kinds.includes("fine_tuning.job.failed"),
        kinds.join(),
      );
    });

    it("a job whose file has too few examples sends fine_tuning.job.failed", async () => {
      const training = await uploadTraining(app.client, trainingLines(3));
      const job = await app.client.fineTuning.jobs.create({ model, training_file: training });
      const event = await eventFor(job.id, "fine_tuning.job.failed");
      const failed = await app.client.fineTuning.jobs.retrieve(job.id);
      assert.equal(failed.status, "failed");
      assert.equal(failed.error?.code, "invalid_n_examples");
      assert.deepEqual(event.data, { id: job.id });
      assert.deepEqual(
        verified.filter((e) => e.data.id === job.id).map((e) => e.type),
        ["fine_tuning.job.failed"],
      );
    });

    it("a job the worker fails (its own file check, after the api's step was lost) sends fine_tuning.job.failed", async () => {
      const training = await uploadTraining(app.client, trainingLines(3));
      // as if the api died right after create: the job stays validating_files until a worker's
      // fallback claim validates it (created_at backdated past that wait)
      const [row] = await db.handle.db
        .insert(fineTuningJobs)
        .values({
          id: `ftjob-${Date.now()}`,
          projectId: app.projectId,
          model,
          trainingFile: training,
          status: "validating_files",
          method: { type: "supervised", supervised: { hyperparameters: {} } },
          seed: 42,
          createdAt: sql`now() - interval '1 minute'`,
        })
        .returning();
      const event = await eventFor(row.id, "fine_tuning.job.failed");
      const failed = await app.client.fineTuning.jobs.retrieve(row.id);
      assert.equal(failed.status, "failed");
      assert.equal(failed.error?.code, "invalid_n_examples");
      assert.deepEqual(event.data, { id: row.id });
    });

    it("another project's job events never reach this project's endpoint", async () => {
      const other = await app.newProject();
      const training = await uploadTraining(other.client, trainingLines(3));
      const job = await other.client.fineTuning.jobs.create({ model, training_file: training });
      await waitForJob(other.client, job.id, isFinished);
      await new Promise((r) => setTimeout(r, 800));
      await eventFor("none", "none", 0).catch(() => {});
      assert.ok(!verified.some((e) => e.data.id === job.id));
    });
  });
}
