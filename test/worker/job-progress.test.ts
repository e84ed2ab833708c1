// A running job's queued progress (worker/job-progress.ts): written in order while the worker
// owns the job, with its lease renewed; once another worker owns it (its lease ran out during
// an outage and the job was taken over), nothing queued is written and `lost` says to stop.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { eq } from "drizzle-orm";
import type OpenAI from "openai";
import { fineTuningJobs } from "../../src/store/db/schema.js";
import { metricsData } from "../../src/store/jobs/job-events.js";
import { JobProgress } from "../../worker/job-progress.js";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import { tinyModelsDir, trainingLines, uploadTraining } from "../support/job-fixtures.js";
import type { TestApp } from "../support/test-app.js";
import { startTinyModelStack, stopStack } from "../support/test-stack.js";

for (const target of testDatabases()) {
  describe(`queued job progress [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    before(async () => {
      ({ db, app } = await startTinyModelStack(target));
    });
    after(() => stopStack({ app, db }));

    it("writes while the job is this worker's, and nothing once another worker owns it", async () => {
      const { model } = await tinyModelsDir();
      const training = await uploadTraining(app.client, trainingLines(10));
      const job = await app.client.fineTuning.jobs.create({
        model,
        training_file: training,
      } as OpenAI.FineTuning.JobCreateParams);
      const { db: q } = db.handle;
      await q
        .update(fineTuningJobs)
        .set({ status: "running", workerId: "me", leaseExpiresAt: new Date(Date.now() - 1000) })
        .where(eq(fineTuningJobs.id, job.id));
      const progress = new JobProgress({
        database: db.handle,
        jobId: job.id,
        workerId: "me",
        leaseSeconds: 30,
        log: () => {},
      });
      const step = (n: number) => ({ type: "metrics" as const, message: `Step ${n}/9`, data: { step: n } });
      progress.addEvents([step(1)]);
      progress.addEvents([step(2)], new Date(Date.now() + 60_000));
      let ranTask = false;
      progress.addTask(async () => {
        ranTask = true;
        return true;
      });
      assert.equal(await progress.flush(), true);
      assert.equal(ranTask, true);
      assert.deepEqual(
        (await metricsData(q, job.id)).map((d) => d.step),
        [1, 2],
      );
      const [row] = await q.select().from(fineTuningJobs).where(eq(fineTuningJobs.id, job.id));
      assert.ok(row!.leaseExpiresAt! > new Date(), "the flush renewed the lease");
      assert.ok(row!.estimatedFinish, "and wrote the estimated finish");

      // taken over by another worker while this one could not reach the database
      await q.update(fineTuningJobs).set({ workerId: "other" }).where(eq(fineTuningJobs.id, job.id));
      progress.addEvents([step(3)]);
      progress.addTask(async () => assert.fail("a task of a lost job must not run"));
      assert.equal(await progress.flush(), false);
      assert.equal(progress.lost, true);
      assert.equal(progress.pending, 0);
      assert.equal(await progress.drain(), "lost");
      assert.deepEqual(
        (await metricsData(q, job.id)).map((d) => d.step),
        [1, 2],
      );
    });
  });
}
