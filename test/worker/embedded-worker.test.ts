// Embedded mode trains in a worker thread: a job runs to success through the thread's database
// proxy, and the api's event loop stays free meanwhile (requests are answered between steps,
// not after them). The event loop's longest stall is measured while a job trains.
import assert from "node:assert/strict";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { after, before, describe, it } from "node:test";
import type OpenAI from "openai";
import { startEmbeddedWorker } from "../../worker/embedded-worker.js";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import {
  allEvents,
  isFinished,
  trainingLines,
  uploadTraining,
  waitForEvent,
  waitForJob,
} from "../support/job-fixtures.js";
import type { TestApp } from "../support/test-app.js";
import { startTinyModelStack, stopStack } from "../support/test-stack.js";

const METHOD = {
  type: "supervised",
  supervised: { hyperparameters: { n_epochs: 2, batch_size: 1, max_seq_length: 48 } },
};

for (const target of testDatabases().filter((t) => t.name === "pglite")) {
  describe(`embedded worker thread [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let stop: (() => Promise<void>) | null = null;
    const log: string[] = [];
    let model: string;
    before(async () => {
      ({ db, app, model } = await startTinyModelStack(target));
      stop = await startEmbeddedWorker(app.config, db.handle, (m) => log.push(m));
    });
    after(async () => {
      await stop?.();
      await stopStack({ app, db });
    });

    it("trains a job to success off the api's event loop", async () => {
      const training = await uploadTraining(app.client, trainingLines(20));
      const job = await app.client.fineTuning.jobs.create({
        model,
        training_file: training,
        method: METHOD,
      } as OpenAI.FineTuning.JobCreateParams);
      await waitForEvent(app.client, job.id, /^Step 2\//);
      const delay = monitorEventLoopDelay({ resolution: 5 });
      delay.enable();
      const latencies: number[] = [];
      let finished = false;
      const probe = (async () => {
        while (!finished) {
          const started = performance.now();
          await app.client.files.list({ limit: 5 });
          latencies.push(performance.now() - started);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const done = await waitForJob(app.client, job.id, isFinished, 180_000);
      finished = true;
      await probe;
      delay.disable();
      assert.equal(done.status, "succeeded", `${JSON.stringify(done.error)}\n${log.join("\n")}`);
      const steps = (await allEvents(app.client, job.id, 100)).filter((e) => e.type === "metrics");
      assert.equal(steps.length, 40);
      latencies.sort((a, b) => a - b);
      const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
      const maxStallMs = delay.max / 1e6;
      console.log(
        `# [pglite] during training: event-loop stall max ${maxStallMs.toFixed(0)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(0)} ms; ` +
          `files.list p50 ${p(0.5).toFixed(1)} ms, p99 ${p(0.99).toFixed(1)} ms, max ${p(1).toFixed(1)} ms (${latencies.length} requests)`,
      );
      assert.ok(
        log.some((m) => m.includes("(worker thread)")),
        log.join("\n"),
      );
      // a training step on the api's thread stalls it for the whole step; in the worker thread only
      // the database work (PGlite runs here) remains
      assert.ok(maxStallMs < 600, `the api's event loop stalled for ${maxStallMs.toFixed(0)} ms`);
    });
  });
}
