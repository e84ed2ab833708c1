// A worker that dies mid-job: its lease expires, another worker takes the job over and resumes
// from the latest checkpoint; the step numbers continue from there and the job succeeds.
//
// Postgres (TEST_DATABASE_URL): real processes. `tsx worker/main.ts` is spawned, killed with
// SIGKILL after its first checkpoint, and a second worker process finishes the job.
// PGlite cannot be shared by two processes (it is single-process), so there the death is
// simulated in-process: the job's lease is handed to a worker id that never heartbeats and set
// to expire, which is exactly what the database sees after a crash; the in-process worker that
// was training notices at its next step that it lost the job and stops writing.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { eq, sql } from "drizzle-orm";
import type OpenAI from "openai";
import pg from "pg";
import { openDatabase } from "../../src/store/db/client.js";
import { fineTuningJobs } from "../../src/store/db/schema.js";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import {
  allEvents,
  isFinished,
  startTestWorker,
  tinyModelsDir,
  trainingLines,
  uploadTraining,
  waitForEvent,
  waitForJob,
} from "../support/job-fixtures.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { startTinyModelStack, stopStack } from "../support/test-stack.js";

/** 20 rows an epoch at batch 1, three epochs: a checkpoint at step 20 with 40 steps to go. */
const METHOD = {
  type: "supervised",
  supervised: { hyperparameters: { n_epochs: 3, batch_size: 1, max_seq_length: 48 } },
};

type Events = Awaited<ReturnType<typeof allEvents>>;
const stepOf = (e: Events[number]) => (e.data as { step: number }).step;

/** The resume evidence: the checkpoint step, the steps of the dead worker and of the new one. */
function checkContinuation(events: Events, deadWorker: string) {
  const takeover = events.findIndex((e) =>
    e.message.startsWith(`Worker ${deadWorker} stopped responding (lease expired)`),
  );
  assert.ok(takeover >= 0, `takeover event: ${JSON.stringify(events.map((e) => e.message))}`);
  const resume = events.findIndex(
    (e, i) => i > takeover && /^Resuming from the checkpoint at step \d+$/.test(e.message),
  );
  assert.ok(resume > takeover, "resume event after the takeover");
  const checkpointStep = Number(/step (\d+)$/.exec(events[resume]!.message)![1]);
  const before = events
    .slice(0, takeover)
    .filter((e) => e.type === "metrics")
    .map(stepOf);
  const afterSteps = events
    .slice(resume)
    .filter((e) => e.type === "metrics")
    .map(stepOf);
  const total = (events.find((e) => e.type === "metrics")!.data as { total_steps: number }).total_steps;
  assert.ok(checkpointStep >= 20, `a checkpoint at the end of epoch 1 at least (${checkpointStep})`);
  assert.deepEqual(
    before.slice(0, checkpointStep),
    Array.from({ length: checkpointStep }, (_, i) => i + 1),
  );
  assert.deepEqual(
    afterSteps,
    Array.from({ length: total - checkpointStep }, (_, i) => checkpointStep + 1 + i),
  );
  // the dead worker's steps after the checkpoint were trained again: their first metrics are gone
  const retrained = events.findIndex((e) =>
    e.message.startsWith(`Resumed from checkpoint at step ${checkpointStep}; steps ${checkpointStep + 1}..`),
  );
  assert.ok(
    retrained > resume,
    `an event names the retrained steps: ${JSON.stringify(events.map((e) => e.message))}`,
  );
  const lastStepBefore = Number(/\.\.(\d+) are retrained$/.exec(events[retrained]!.message)![1]);
  assert.deepEqual(
    events.filter((e) => e.type === "metrics").map(stepOf),
    Array.from({ length: total }, (_, i) => i + 1),
    "each step's metrics once, in order",
  );
  return { checkpointStep, lastStepBefore, firstStepAfter: afterSteps[0]!, total };
}

async function checkResultCsv(client: OpenAI, job: { result_files: string[] }, total: number): Promise<void> {
  const csv = await (await client.files.content(job.result_files[0]!)).text();
  const steps = csv
    .trim()
    .split("\n")
    .slice(1)
    .map((r) => Number(r.split(",")[0]));
  assert.deepEqual(
    steps,
    Array.from({ length: total }, (_, i) => i + 1),
  );
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin(url: string, text: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

function spawnWorker(url: string, modelsDir: string, workerId: string, output: string[]): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "worker/main.ts"], {
    env: {
      ...process.env,
      DATABASE_URL: url,
      MODELS_DIR: modelsDir,
      WORKER_ID: workerId,
      WORKER_LEASE_SECONDS: "2",
      WORKER_POLL_SECONDS: "0.5",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (d) => output.push(String(d)));
  child.stderr!.on("data", (d) => output.push(String(d)));
  return child;
}

const exited = (child: ChildProcess) =>
  new Promise<number | string | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode ?? child.signalCode);
    else child.once("exit", (code, signal) => resolve(code ?? signal));
  });

const serverUrl = process.env.TEST_DATABASE_URL;

describe("crash recovery with worker processes [postgres]", {
  skip: serverUrl ? false : "TEST_DATABASE_URL not set",
}, () => {
  const name = `th_crash_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  let url: string;
  let app: TestApp;
  let handle: Awaited<ReturnType<typeof openDatabase>>;
  const children: ChildProcess[] = [];
  const output: string[] = [];

  before(async () => {
    await admin(serverUrl!, `CREATE DATABASE ${name}`);
    url = withDatabase(serverUrl!, name);
    handle = await openDatabase({ kind: "postgres", url, poolSize: 4 });
    app = await startTestApp({ database: handle, config: { modelsDir: (await tinyModelsDir()).dir } });
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await app?.close();
    await handle?.close();
    await admin(serverUrl!, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });

  it("kill -9 after the first checkpoint: a second worker process resumes and finishes", async () => {
    const { dir, model } = await tinyModelsDir();
    const training = await uploadTraining(app.client, trainingLines(20));
    const job = await app.client.fineTuning.jobs.create({
      model,
      training_file: training,
      method: METHOD,
    } as OpenAI.FineTuning.JobCreateParams);
    const a = spawnWorker(url, dir, "crash-a", output);
    children.push(a);
    try {
      await waitForEvent(app.client, job.id, /^Checkpoint created at step \d+/, 120_000);
      // two steps past the checkpoint, so the next worker redoes steps the dead one reported
      await waitForEvent(app.client, job.id, /^Step 22\//, 120_000);
    } catch (err) {
      console.log(output.join(""));
      throw err;
    }
    a.kill("SIGKILL");
    assert.equal(await exited(a), "SIGKILL");
    const [row] = await handle.db.select().from(fineTuningJobs).where(eq(fineTuningJobs.id, job.id));
    assert.equal(row!.status, "running");
    assert.equal(row!.workerId, "crash-a");

    const b = spawnWorker(url, dir, "crash-b", output);
    children.push(b);
    const done = await waitForJob(app.client, job.id, isFinished, 180_000);
    assert.equal(done.status, "succeeded", `${JSON.stringify(done.error)}\n${output.join("")}`);
    const evidence = checkContinuation(await allEvents(app.client, job.id, 100), "crash-a");
    await checkResultCsv(app.client, done, evidence.total);
    console.log(
      `# [postgres, processes] worker A killed (SIGKILL) after step ${evidence.lastStepBefore}; checkpoint at step ${evidence.checkpointStep}; ` +
        `worker B resumed at step ${evidence.firstStepAfter} and finished ${evidence.total}/${evidence.total}`,
    );
    b.kill("SIGTERM");
    assert.equal(await exited(b), 0, "SIGTERM exits cleanly");
  });

  it("SIGTERM mid-job: the worker checkpoints its step, re-queues the job and exits 0; the next one continues", async () => {
    const { dir, model } = await tinyModelsDir();
    const training = await uploadTraining(app.client, trainingLines(20));
    const job = await app.client.fineTuning.jobs.create({
      model,
      training_file: training,
      method: METHOD,
    } as OpenAI.FineTuning.JobCreateParams);
    const c = spawnWorker(url, dir, "term-c", output);
    children.push(c);
    await waitForEvent(app.client, job.id, /^Step 3\//, 120_000);
    c.kill("SIGTERM");
    assert.equal(await exited(c), 0);
    const requeued = await app.client.fineTuning.jobs.retrieve(job.id);
    assert.equal(requeued.status, "queued");
    const events = await allEvents(app.client, job.id, 100);
    const stop = events.find((e) =>
      /^Worker term-c is shutting down: job checkpointed at step \d+ and queued again$/.test(e.message),
    );
    assert.ok(stop, JSON.stringify(events.map((e) => e.message)));
    const stoppedAt = Number(/step (\d+)/.exec(stop.message)![1]);
    assert.equal(
      Math.max(...events.filter((e) => e.type === "metrics").map(stepOf)),
      stoppedAt,
      "no finished step lost",
    );

    const d = spawnWorker(url, dir, "term-d", output);
    children.push(d);
    const done = await waitForJob(app.client, job.id, isFinished, 180_000);
    assert.equal(done.status, "succeeded", JSON.stringify(done.error));
    const all = await allEvents(app.client, job.id, 100);
    const resume = all.findIndex((e) => e.message === `Resuming from the checkpoint at step ${stoppedAt}`);
    assert.ok(resume > 0);
    assert.equal(stepOf(all.slice(resume).find((e) => e.type === "metrics")!), stoppedAt + 1);
    d.kill("SIGTERM");
    assert.equal(await exited(d), 0);
  });
});

for (const target of testDatabases().filter((t) => t.name === "pglite")) {
  describe("crash recovery, simulated in one process [pglite]", () => {
    let db: TestDatabase;
    let app: TestApp;

    before(async () => {
      ({ db, app } = await startTinyModelStack(target));
    });
    after(() => stopStack({ app, db }));

    it("an expired lease after the first checkpoint: the job is taken over and resumed from it", async () => {
      const { dir, model } = await tinyModelsDir();
      const outcomes: string[] = [];
      const worker = await startTestWorker(db.handle, dir, {
        leaseSeconds: 2,
        onJobDone: (_, o) => outcomes.push(o),
      });
      try {
        const training = await uploadTraining(app.client, trainingLines(20));
        const job = await app.client.fineTuning.jobs.create({
          model,
          training_file: training,
          method: METHOD,
        } as OpenAI.FineTuning.JobCreateParams);
        await waitForEvent(app.client, job.id, /^Checkpoint created at step \d+/);
        await waitForEvent(app.client, job.id, /^Step 22\//);
        // what the database sees after a crash: an owner that stopped renewing, its lease run out
        await db.handle.db
          .update(fineTuningJobs)
          .set({ workerId: "dead-worker", leaseExpiresAt: sql`now() - interval '1 second'` })
          .where(eq(fineTuningJobs.id, job.id));
        const done = await waitForJob(app.client, job.id, isFinished);
        assert.equal(done.status, "succeeded", JSON.stringify(done.error));
        assert.equal(outcomes[0], "lost", "the worker that lost the lease stopped and wrote nothing more");
        const evidence = checkContinuation(await allEvents(app.client, job.id, 100), "dead-worker");
        await checkResultCsv(app.client, done, evidence.total);
        console.log(
          `# [pglite, simulated] lease expired after step ${evidence.lastStepBefore}; checkpoint at step ${evidence.checkpointStep}; ` +
            `resumed at step ${evidence.firstStepAfter} and finished ${evidence.total}/${evidence.total}`,
        );
      } finally {
        await worker.stop();
      }
    });
  });
}
