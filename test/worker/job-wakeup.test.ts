// LISTEN/NOTIFY: a new job queued by the api's file check, and a resumed one, wake an idle
// worker at once (no poll wait).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { listenForJobs } from "../../worker/job-wakeup.js";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import {
  isFinished,
  tinyModelsDir,
  trainingLines,
  uploadTraining,
  waitForJob,
} from "../support/job-fixtures.js";
import type { TestApp } from "../support/test-app.js";
import { startTinyModelStack, stopStack } from "../support/test-stack.js";

for (const target of testDatabases()) {
  describe(`worker wake-up on NOTIFY [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    before(async () => {
      ({ db, app } = await startTinyModelStack(target));
    });
    after(() => stopStack({ app, db }));

    it("a job queued after its files are validated, and a resumed one, notify the listeners; unlisten stops it", async () => {
      let wakes = 0;
      const stop = await listenForJobs(db.handle, () => wakes++);
      const waitForWake = async (n: number) => {
        const until = Date.now() + 5000;
        while (wakes < n) {
          assert.ok(Date.now() < until, `woken ${wakes} times, expected ${n}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      const { model } = await tinyModelsDir();
      const file = await uploadTraining(app.client, trainingLines(10));
      const job = await app.client.fineTuning.jobs.create({ model, training_file: file });
      await waitForWake(1);
      // the NOTIFY is sent in the transaction that queues the job: a woken worker finds it queued
      assert.equal((await app.client.fineTuning.jobs.retrieve(job.id)).status, "queued");
      await app.client.fineTuning.jobs.pause(job.id);
      await app.client.fineTuning.jobs.resume(job.id);
      await waitForWake(2);
      // a job its file check fails wakes no one
      const few = await uploadTraining(app.client, trainingLines(3));
      const failed = await app.client.fineTuning.jobs.create({ model, training_file: few });
      await waitForJob(app.client, failed.id, isFinished, 10_000);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(wakes, 2);
      await stop();
      await app.client.fineTuning.jobs.create({ model, training_file: file });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(wakes, 2);
    });
  });
}
