// Control of running jobs on the real engine: cancel lands within a step and frees the worker;
// pause checkpoints and frees the worker, resume continues from that step; two workers racing
// on one queue never claim the same job. PGlite and Postgres.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { eq } from "drizzle-orm";
import type OpenAI from "openai";
import { blobs, fineTuningJobs } from "../../../src/store/db/schema.js";
import { claimJob } from "../../../src/store/jobs/job-state-machine.js";
import type { RunningWorker } from "../../../worker/worker-loop.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import {
  allEvents,
  isFinished,
  startTestWorker,
  tinyModelsDir,
  trainingLines,
  uploadTraining,
  waitForEvent,
  waitForJob,
} from "../../support/job-fixtures.js";
import type { TestApp } from "../../support/test-app.js";
import { startJobsStack, stopStack } from "../../support/test-stack.js";

/** Many steps (batch 1, many epochs), so there is time to act while it runs. */
const LONG = {
  type: "supervised",
  supervised: { hyperparameters: { n_epochs: 2, batch_size: 1, max_seq_length: 48 } },
};

const metricsSteps = (events: Awaited<ReturnType<typeof allEvents>>) =>
  events.filter((e) => e.type === "metrics").map((e) => (e.data as { step: number }).step);

for (const target of testDatabases()) {
  describe(`running jobs: cancel, pause/resume, racing workers [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let worker: RunningWorker;
    let model: string;
    let training: string;
    const outcomes = new Map<string, string[]>();

    before(async () => {
      ({ db, app, worker, model } = await startJobsStack(target, {
        worker: { onJobDone: (id, outcome) => outcomes.set(id, [...(outcomes.get(id) ?? []), outcome]) },
      }));
      training = await uploadTraining(app.client, trainingLines(20));
    });
    after(() => stopStack({ worker, app, db }));

    const createLong = () =>
      app.client.fineTuning.jobs.create({
        model,
        training_file: training,
        method: LONG,
      } as OpenAI.FineTuning.JobCreateParams);

    it("cancel while running: stops within a step, frees the worker", async () => {
      const job = await createLong();
      await waitForEvent(app.client, job.id, /^Step 2\//);
      const running = await app.client.fineTuning.jobs.retrieve(job.id);
      assert.equal(running.status, "running");
      assert.ok(
        running.estimated_finish! >= running.created_at,
        `estimated_finish ${running.estimated_finish}`,
      );
      const cancelled = await app.client.fineTuning.jobs.cancel(job.id);
      assert.equal(cancelled.status, "cancelled");
      const t0 = Date.now();
      while (!outcomes.has(job.id)) {
        assert.ok(Date.now() - t0 < 10_000, "the worker let go of the cancelled job within 10 s");
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(outcomes.get(job.id), ["cancelled"]);
      const steps = metricsSteps(await allEvents(app.client, job.id, 100));
      const total = (
        (await allEvents(app.client, job.id, 100)).find((e) => e.type === "metrics")!.data as {
          total_steps: number;
        }
      ).total_steps;
      assert.ok(steps.length < total, `stopped early: ${steps.length} of ${total} steps`);
      const final = await app.client.fineTuning.jobs.retrieve(job.id);
      assert.equal(final.status, "cancelled");
      assert.equal(final.fine_tuned_model, null);
    });

    it("pause checkpoints and frees the worker; resume continues from that step to success", async () => {
      const job = await createLong();
      await waitForEvent(app.client, job.id, /^Step 3\//);
      assert.equal((await app.client.fineTuning.jobs.pause(job.id)).status, "paused");
      await waitForEvent(app.client, job.id, /^Job paused at step \d+/);
      assert.deepEqual(outcomes.get(job.id), ["paused"]);
      const paused = await app.client.fineTuning.jobs.retrieve(job.id);
      assert.equal(paused.status, "paused");
      const pausedAt = Number(
        /step (\d+)/.exec(
          (await allEvents(app.client, job.id, 100)).find((e) => /^Job paused/.test(e.message))!.message,
        )![1],
      );
      const stepsBefore = metricsSteps(await allEvents(app.client, job.id, 100));
      assert.equal(Math.max(...stepsBefore), pausedAt, "the pause checkpoint is the last finished step");
      // a paused job stays put
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(metricsSteps(await allEvents(app.client, job.id, 100)).length, stepsBefore.length);

      assert.equal((await app.client.fineTuning.jobs.resume(job.id)).status, "queued");
      const done = await waitForJob(app.client, job.id, isFinished);
      assert.equal(done.status, "succeeded", JSON.stringify(done.error));
      const events = await allEvents(app.client, job.id, 100);
      const resumedAt = events.findIndex(
        (e) => e.message === `Resuming from the checkpoint at step ${pausedAt}`,
      );
      assert.ok(resumedAt > 0, "resume event");
      const after = metricsSteps(events.slice(resumedAt));
      const total = (events.find((e) => e.type === "metrics")!.data as { total_steps: number }).total_steps;
      assert.deepEqual(
        after,
        Array.from({ length: total - pausedAt }, (_, i) => pausedAt + 1 + i),
        "steps continue",
      );
      console.log(
        `# [${target.name}] pause/resume: paused at step ${pausedAt}, resumed at step ${after[0]} of ${total}`,
      );
    });

    it("cancelling a paused job drops its resume state (a cancelled job is never resumed)", async () => {
      const job = await createLong();
      await waitForEvent(app.client, job.id, /^Step 2\//);
      await app.client.fineTuning.jobs.pause(job.id);
      await waitForEvent(app.client, job.id, /^Job paused at step \d+/);
      const [paused] = await db.handle.db.select().from(fineTuningJobs).where(eq(fineTuningJobs.id, job.id));
      assert.ok(paused!.resumeBlobId, "the pause stored a resume state");
      assert.equal((await app.client.fineTuning.jobs.cancel(job.id)).status, "cancelled");
      const [cancelled] = await db.handle.db
        .select()
        .from(fineTuningJobs)
        .where(eq(fineTuningJobs.id, job.id));
      assert.equal(cancelled!.resumeBlobId, null);
      assert.equal(
        (await db.handle.db.select().from(blobs).where(eq(blobs.id, paused!.resumeBlobId!))).length,
        0,
      );
    });

    it("two running workers share the queue: every job runs once, on one of them", async () => {
      const { dir } = await tinyModelsDir();
      const second = new Map<string, string[]>();
      const other = await startTestWorker(db.handle, dir, {
        onJobDone: (id, outcome) => second.set(id, [...(second.get(id) ?? []), outcome]),
      });
      try {
        const short = {
          type: "supervised",
          supervised: { hyperparameters: { n_epochs: 1, batch_size: 4, max_seq_length: 64 } },
        };
        const jobs = [];
        for (let i = 0; i < 4; i++) {
          jobs.push(
            await app.client.fineTuning.jobs.create({
              model,
              training_file: training,
              method: short,
            } as OpenAI.FineTuning.JobCreateParams),
          );
        }
        for (const job of jobs)
          assert.equal((await waitForJob(app.client, job.id, isFinished)).status, "succeeded");
        for (const job of jobs) {
          const runs = [...(outcomes.get(job.id) ?? []), ...(second.get(job.id) ?? [])];
          assert.deepEqual(runs, ["succeeded"], `${job.id} ran once`);
          const started = (await allEvents(app.client, job.id, 100)).filter(
            (e) => e.message === "Fine-tuning job started",
          );
          assert.equal(started.length, 1);
        }
      } finally {
        await other.stop();
      }
    });

    it("two workers racing on one queue never claim the same job", async () => {
      await worker.stop();
      const jobs = [];
      for (let i = 0; i < 12; i++) jobs.push((await createLong()).id);
      // the api queues each job once it has checked its files; only queued jobs are claimed
      for (const id of jobs) await waitForJob(app.client, id, (j) => j.status === "queued", 10_000);
      const claims: { worker: string; job: string }[] = [];
      const race = async (name: string) => {
        for (;;) {
          const claimed = await claimJob(db.handle.db, name, 60);
          if (!claimed) return;
          claims.push({ worker: name, job: claimed.job.id });
        }
      };
      await Promise.all([race("racer-a"), race("racer-b"), race("racer-a2"), race("racer-b2")]);
      const claimedIds = claims.map((c) => c.job).sort();
      assert.deepEqual(claimedIds, [...jobs].sort(), `each job exactly once: ${JSON.stringify(claims)}`);
      assert.equal(await claimJob(db.handle.db, "late", 60), null, "nothing left while the leases live");
    });
  });
}
