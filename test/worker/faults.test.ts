// Faults on real processes (`npm start` and `npm run worker`) over a Postgres server:
// - the database's connections are terminated while a job trains: the same worker finishes
//   it, nothing fails, a live event stream goes on, and the idle worker's LISTEN comes back;
// - a worker is killed (SIGKILL) mid-job: the other one takes over, no step lost or repeated;
// - the api gets SIGTERM mid-upload: it exits, no file row is left, and the bytes are swept.
// Each suite uses a database of its own; only that database's connections are terminated.
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import type OpenAI from "openai";
import { sweepAbandonedBlobs } from "../../src/store/blobs/blob-store.js";
import { type DatabaseHandle, openDatabase } from "../../src/store/db/client.js";
import {
  allEvents,
  isFinished,
  tinyModelsDir,
  trainingLines,
  uploadTraining,
  waitForEvent,
} from "../support/job-fixtures.js";
import { chatJsonlOfSize } from "../support/jsonl.js";
import {
  type ScratchDatabase,
  type ServiceProcess,
  scratchDatabase,
  spawnApi,
  spawnWorker,
  stopProcess,
  terminateBackends,
} from "../support/service-processes.js";
import { sdkClient } from "../support/test-app.js";

/** 20 rows an epoch at batch 1, three epochs: 60 steps, checkpoints at 20, 40 and 60. */
const METHOD = {
  type: "supervised",
  supervised: { hyperparameters: { n_epochs: 3, batch_size: 1, max_seq_length: 48 } },
};
const API_KEY = "sk-faults-0123456789";

type Job = Awaited<ReturnType<OpenAI["fineTuning"]["jobs"]["retrieve"]>>;
type Events = Awaited<ReturnType<typeof allEvents>>;
const stepOf = (e: Events[number]) => (e.data as { step: number }).step;

/** Polls the job through the api; an answer lost to a terminated connection is asked again. */
async function waitForJobStatus(
  client: OpenAI,
  id: string,
  done: (job: Job) => boolean,
  timeoutMs: number,
): Promise<Job> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const job = await client.fineTuning.jobs.retrieve(id);
      if (done(job)) return job;
      if (Date.now() > until) assert.fail(`job ${id} still '${job.status}' after ${timeoutMs} ms`);
    } catch (err) {
      if (Date.now() > until) throw err;
    }
    await sleep(150);
  }
}

async function retrying<T>(what: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await what();
    } catch (err) {
      if (i >= 5) throw err;
      await sleep(300);
    }
  }
}

async function resultSteps(client: OpenAI, job: Job): Promise<number[]> {
  const csv = await (await client.files.content(job.result_files[0]!)).text();
  return csv
    .trim()
    .split("\n")
    .slice(1)
    .map((r) => Number(r.split(",")[0]));
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** A live `?stream=true` reader: the events' messages as they come, and the final `done`. */
function readEventStream(baseURL: string, jobId: string) {
  const messages: string[] = [];
  let done: { status: string | null } | null = null;
  const finished = (async () => {
    const res = await fetch(`${baseURL}/fine_tuning/jobs/${jobId}/events?stream=true`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    assert.equal(res.status, 200);
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!event || data === undefined) continue;
        if (event === "done") done = JSON.parse(data);
        else messages.push(JSON.parse(data).message);
      }
    }
  })();
  return { messages, finished, done: () => done };
}

/** Terminates this database's connections `times` times, `gapMs` apart (a burst hits queries in flight). */
async function terminateBurst(db: ScratchDatabase, times = 4, gapMs = 250): Promise<number> {
  let n = 0;
  for (let i = 0; i < times; i++) {
    n += await terminateBackends(db);
    await sleep(gapMs);
  }
  return n;
}

const serverUrl = process.env.TEST_DATABASE_URL;
const skip = serverUrl
  ? false
  : "TEST_DATABASE_URL not set: the fault suite needs a Postgres server (real processes)";

describe("faults: lost database connections [postgres, processes]", { skip }, () => {
  let db: ScratchDatabase;
  let handle: DatabaseHandle;
  let api: (ServiceProcess & { baseURL: string }) | undefined;
  let client: OpenAI;
  const workers: ServiceProcess[] = [];

  before(async () => {
    db = await scratchDatabase(serverUrl!, "th_faults");
    handle = await openDatabase({ kind: "postgres", url: db.url, poolSize: 2 });
    api = await spawnApi(db.url, { modelsDir: (await tinyModelsDir()).dir, apiKey: API_KEY });
    client = sdkClient(api.baseURL, API_KEY);
  });
  after(async () => {
    for (const w of workers) stopProcess(w);
    stopProcess(api);
    await handle?.close();
    await db?.drop();
  });

  it("connections terminated twice mid-job: the same worker finishes it, and the live event stream goes on", async () => {
    const { dir, model } = await tinyModelsDir();
    const worker = spawnWorker(db.url, { modelsDir: dir, workerId: "blip-a", leaseSeconds: 3 });
    workers.push(worker);
    const training = await uploadTraining(client, trainingLines(20));
    const job = await client.fineTuning.jobs.create({
      model,
      training_file: training,
      method: METHOD,
    } as OpenAI.FineTuning.JobCreateParams);
    const stream = readEventStream(api!.baseURL, job.id);
    const log = () => worker.output.join("");
    try {
      await waitForEvent(client, job.id, /^Step 5\//, 120_000);
      const first = await terminateBurst(db);
      await retrying(() => waitForEvent(client, job.id, /^Step 2[4-9]\//, 120_000));
      const second = await terminateBurst(db);
      assert.ok(first > 0 && second > 0, `connections terminated: ${first}, ${second}`);
      const done = await waitForJobStatus(client, job.id, isFinished, 180_000);
      assert.equal(done.status, "succeeded", `${JSON.stringify(done.error)}\n${log()}`);
    } catch (err) {
      console.log(log());
      throw err;
    }
    assert.equal(worker.child.exitCode, null, "the worker is still running");
    const events = await allEvents(client, job.id, 100);
    assert.ok(
      !events.some((e) => /stopped responding|failed/.test(e.message)),
      JSON.stringify(events.map((e) => e.message)),
    );
    assert.deepEqual(events.filter((e) => e.type === "metrics").map(stepOf), range(1, 60), "every step once");
    const done = await client.fineTuning.jobs.retrieve(job.id);
    assert.deepEqual(await resultSteps(client, done), range(1, 60));
    // the stream stayed open through both terminations and ended with the job
    await stream.finished;
    assert.deepEqual(stream.done(), { status: "succeeded" });
    const streamedSteps = stream.messages
      .filter((m) => /^Step \d+\//.test(m))
      .map((m) => Number(/^Step (\d+)/.exec(m)![1]));
    assert.deepEqual(streamedSteps, range(1, 60));
    const lost = (log().match(/database unavailable/g) ?? []).length;
    console.log(
      `# [postgres] ${lost} database outage(s) seen by the worker; job succeeded with worker blip-a, 60/60 steps, stream complete`,
    );
    worker.child.kill("SIGTERM");
    assert.equal(await worker.exited, 0);
  });

  it("an idle worker's LISTEN connection comes back: a job queued while it was down still starts at once", async () => {
    const { dir, model } = await tinyModelsDir();
    // a poll far longer than the test: only a notification (or the reconnect's wake) starts the job
    const worker = spawnWorker(db.url, { modelsDir: dir, workerId: "listen-b", pollSeconds: 600 });
    workers.push(worker);
    await waitForOutput(worker, /lease \d+s/);
    await sleep(1000); // let it go idle (its first poll found nothing)
    const training = await uploadTraining(client, trainingLines(10));
    assert.ok((await terminateBackends(db)) > 0);
    const job = await retrying(() =>
      client.fineTuning.jobs.create({
        model,
        training_file: training,
        method: {
          type: "supervised",
          supervised: { hyperparameters: { n_epochs: 1, batch_size: 2, max_seq_length: 48 } },
        },
      } as OpenAI.FineTuning.JobCreateParams),
    );
    const started = await waitForJobStatus(
      client,
      job.id,
      (j) => j.status === "running" || isFinished(j),
      15_000,
    ).catch((err) => {
      console.log(worker.output.join(""));
      throw err;
    });
    assert.notEqual(started.status, "failed", JSON.stringify(started.error));
    const done = await waitForJobStatus(client, job.id, isFinished, 120_000);
    assert.equal(done.status, "succeeded", JSON.stringify(done.error));
    worker.child.kill("SIGTERM");
    assert.equal(await worker.exited, 0);
  });

  it("kill -9 of the worker mid-job: the other worker takes over; no step is lost or repeated", async () => {
    const { dir, model } = await tinyModelsDir();
    const a = spawnWorker(db.url, { modelsDir: dir, workerId: "kill-a", leaseSeconds: 2 });
    workers.push(a);
    await waitForOutput(a, /lease \d+s/);
    const training = await uploadTraining(client, trainingLines(20));
    const job = await client.fineTuning.jobs.create({
      model,
      training_file: training,
      method: METHOD,
    } as OpenAI.FineTuning.JobCreateParams);
    await waitForEvent(client, job.id, /^Checkpoint created at step 20/, 120_000);
    await waitForEvent(client, job.id, /^Step 23\//, 60_000);
    const b = spawnWorker(db.url, { modelsDir: dir, workerId: "kill-b", leaseSeconds: 2 });
    workers.push(b);
    a.child.kill("SIGKILL");
    assert.equal(await a.exited, "SIGKILL");
    const done = await waitForJobStatus(client, job.id, isFinished, 180_000);
    assert.equal(done.status, "succeeded", `${JSON.stringify(done.error)}\n${b.output.join("")}`);
    const events = await allEvents(client, job.id, 100);
    const messages = events.map((e) => e.message);
    assert.ok(
      messages.some((m) =>
        m.startsWith("Worker kill-a stopped responding (lease expired); worker kill-b takes the job over"),
      ),
    );
    const retrained = messages.find((m) =>
      /^Resumed from checkpoint at step 20; steps 21\.\.\d+ are retrained$/.test(m),
    );
    assert.ok(retrained, JSON.stringify(messages));
    assert.deepEqual(events.filter((e) => e.type === "metrics").map(stepOf), range(1, 60), "every step once");
    assert.deepEqual(await resultSteps(client, done), range(1, 60));
    console.log(`# [postgres] kill -9 after step 23: ${retrained}; result CSV has steps 1..60 once`);
    b.child.kill("SIGTERM");
    assert.equal(await b.exited, 0);
  });
});

async function waitForOutput(proc: ServiceProcess, pattern: RegExp, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!pattern.test(proc.output.join(""))) {
    if (Date.now() > until || proc.child.exitCode !== null)
      assert.fail(`no ${pattern} in:\n${proc.output.join("")}`);
    await sleep(50);
  }
}

describe("faults: SIGTERM of the api mid-upload [postgres, processes]", { skip }, () => {
  let db: ScratchDatabase;
  let handle: DatabaseHandle;
  let api: (ServiceProcess & { baseURL: string }) | undefined;

  before(async () => {
    db = await scratchDatabase(serverUrl!, "th_faults");
    handle = await openDatabase({ kind: "postgres", url: db.url, poolSize: 2 });
    api = await spawnApi(db.url, {
      modelsDir: (await tinyModelsDir()).dir,
      apiKey: API_KEY,
      env: { SHUTDOWN_GRACE_SECONDS: "1" },
    });
  });
  after(async () => {
    stopProcess(api);
    await handle?.close();
    await db?.drop();
  });

  const counts = async () => {
    const result = (await handle.db.execute(
      sql`SELECT (SELECT count(*) FROM files)::int AS files, (SELECT count(*) FROM blobs)::int AS blobs,
                 (SELECT count(*) FROM blob_chunks)::int AS chunks`,
    )) as unknown as { rows: { files: number; blobs: number; chunks: number }[] };
    return result.rows[0]!;
  };

  it("the api exits within its grace period, no file row is left, and the stored chunks are swept", async () => {
    assert.deepEqual(await counts(), { files: 0, blobs: 0, chunks: 0 });
    const boundary = "sigterm-here";
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n` +
        "Content-Type: application/octet-stream\r\n\r\n",
    );
    const content = chatJsonlOfSize(6 * 1024 * 1024);
    const url = new URL(`${api!.baseURL}/files`);
    // streamed as the SDK streams files (chunked), and then stalled: a slow client mid-body
    const req = request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: "POST",
      headers: {
        authorization: `Bearer ${API_KEY}`,
        "content-type": `multipart/form-data; boundary=${boundary}`,
      },
    });
    const outcome = new Promise<string>((resolve) => {
      req.on("response", (res) => {
        res.resume();
        resolve(`response ${res.statusCode}`);
      });
      req.on("error", (err) => resolve(`error ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    });
    req.write(head);
    req.write(content.subarray(0, 3 * 1024 * 1024));
    const until = Date.now() + 30_000;
    while ((await counts()).chunks < 2) {
      assert.ok(Date.now() < until, "the upload's first chunks reached the database");
      await sleep(50);
    }
    const signalledAt = Date.now();
    api!.child.kill("SIGTERM");
    const exit = await Promise.race([api!.exited, sleep(15_000).then(() => "still running after 15 s")]);
    assert.equal(exit, 0, api!.output.join(""));
    const tookMs = Date.now() - signalledAt;
    assert.match(await outcome, /^error /, "the cut upload got no answer");
    const left = await counts();
    assert.equal(left.files, 0, "no file row");
    // a writer that could not clean up (killed mid-write) leaves `writing` bytes for the sweeper
    await sweepAbandonedBlobs(handle.db, 0);
    assert.deepEqual(await counts(), { files: 0, blobs: 0, chunks: 0 });
    console.log(
      `# [postgres] api exited ${tookMs} ms after SIGTERM mid-upload; ${left.chunks} chunk(s) left before the sweep, 0 after`,
    );
  });
});
