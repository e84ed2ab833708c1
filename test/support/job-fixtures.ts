// Shared set-up for the jobs tests: the tiny default model in a models folder made once per
// process, training lines it learns from quickly, the backend, an in-process worker with a
// short poll and lease, waits on a job's status or events, a job that makes the tiny model
// memorise its file, and adapter downloads.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type OpenAI from "openai";
import { toFile } from "openai";
import type { DatabaseHandle } from "../../src/store/db/client.js";
import { readTarArchive } from "../../src/store/models/adapter-archive.js";
import { ensureTinyModel } from "../../worker/engine/hf/tiny-model.js";
import { type RunningWorker, startWorker } from "../../worker/worker-loop.js";
import { initTestBackend } from "./engine-backend.js";

let modelsDir: Promise<{ dir: string; model: string }> | null = null;

/** A models folder holding the tiny default model (written once per test process). */
export function tinyModelsDir(): Promise<{ dir: string; model: string }> {
  modelsDir ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "jobs-models-"));
    const model = await ensureTinyModel(dir);
    return { dir, model };
  })();
  return modelsDir;
}

let backendReady: Promise<void> | null = null;
export function useBackend(): Promise<void> {
  backendReady ??= initTestBackend().then(() => tf.ready());
  return backendReady;
}

/** `n` short chat examples (the tiny model packs several into one 64-token row). */
export function trainingLines(n: number, offset = 0): string {
  let out = "";
  for (let i = 0; i < n; i++) {
    out += `${JSON.stringify({
      messages: [
        { role: "user", content: `Capital ${(i + offset) % 7}?` },
        { role: "assistant", content: `City ${(i + offset) % 7}.` },
      ],
    })}\n`;
  }
  return out;
}

/** `n` preference pairs: the preferred answer names the city, the other one refuses. */
export function preferenceLines(n: number, offset = 0): string {
  let out = "";
  for (let i = 0; i < n; i++) {
    const k = (i + offset) % 7;
    out += `${JSON.stringify({
      input: { messages: [{ role: "user", content: `Capital ${k}?` }] },
      preferred_output: [{ role: "assistant", content: `City ${k}.` }],
      non_preferred_output: [{ role: "assistant", content: `No idea ${(k + 3) % 7}!` }],
    })}\n`;
  }
  return out;
}

export async function uploadTraining(client: OpenAI, content: string, name = "train.jsonl"): Promise<string> {
  const file = await client.files.create({
    file: await toFile(Buffer.from(content), name),
    purpose: "fine-tune",
  });
  return file.id;
}

export interface TestWorkerOptions {
  leaseSeconds?: number;
  workerId?: string;
  onJobDone?: (jobId: string, outcome: string) => void;
}

export async function startTestWorker(
  database: DatabaseHandle,
  dir: string,
  opts: TestWorkerOptions = {},
): Promise<RunningWorker> {
  await useBackend();
  return startWorker({
    database,
    modelsDir: dir,
    settings: {
      workerId: opts.workerId ?? `test-worker-${Math.random().toString(36).slice(2, 8)}`,
      leaseSeconds: opts.leaseSeconds ?? 30,
      pollSeconds: 0.5,
      microBatchSize: 4,
    },
    log: process.env.JOBS_TEST_LOG ? (m) => console.log(m) : undefined,
    onJobDone: opts.onJobDone,
  });
}

type Job = Awaited<ReturnType<OpenAI["fineTuning"]["jobs"]["retrieve"]>>;

export async function waitForJob(
  client: OpenAI,
  id: string,
  done: (job: Job) => boolean,
  timeoutMs = 120_000,
): Promise<Job> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const job = await client.fineTuning.jobs.retrieve(id);
    if (done(job)) return job;
    if (Date.now() > until) assert.fail(`job ${id} still '${job.status}' after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

export const isFinished = (job: Job): boolean => ["succeeded", "failed", "cancelled"].includes(job.status);

/** Every event of a job, oldest first, through the SDK's auto-pagination. */
export async function allEvents(client: OpenAI, id: string, pageSize = 20) {
  const events = [];
  for await (const e of client.fineTuning.jobs.listEvents(id, { limit: pageSize })) events.push(e);
  return events.reverse();
}

export async function waitForEvent(
  client: OpenAI,
  id: string,
  pattern: RegExp,
  timeoutMs = 120_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const page = await client.fineTuning.jobs.listEvents(id, { limit: 100 });
    if (page.data.some((e) => pattern.test(e.message))) return;
    if (Date.now() > until) assert.fail(`job ${id}: no event matching ${pattern} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Hyperparameters with which the tiny model memorises a dozen lines (about 120 steps): small
 * data, many passes, a high rate, no dropout or warm-up.
 */
export function memorisingHyperparameters(maxSeqLength: number) {
  return {
    n_epochs: 20,
    batch_size: 2,
    learning_rate_multiplier: 20,
    lora_alpha: 64,
    lora_dropout: 0,
    max_seq_length: maxSeqLength,
    warmup_ratio: 0,
  };
}

/** Uploads `lines`, trains `model` on them until it memorises them (seed 1), and asserts success. */
export async function trainMemorisingJob(
  client: OpenAI,
  opts: { model: string; lines: string; maxSeqLength: number; timeoutMs: number },
): Promise<Job> {
  const training = await uploadTraining(client, opts.lines);
  const job = await client.fineTuning.jobs.create({
    model: opts.model,
    training_file: training,
    seed: 1,
    method: {
      type: "supervised",
      supervised: { hyperparameters: memorisingHyperparameters(opts.maxSeqLength) },
    },
  } as OpenAI.FineTuning.JobCreateParams);
  const done = await waitForJob(client, job.id, isFinished, opts.timeoutMs);
  assert.equal(done.status, "succeeded", JSON.stringify(done.error));
  return done;
}

/**
 * GETs an archive download (`/fine_tuning/jobs/{id}/adapter`, a checkpoint's or a model's) with
 * the app's key, asserts a 200 tar, and unpacks it into `into`; returns the names, sorted.
 */
export async function downloadArchive(
  app: { baseURL: string; apiKey: string },
  path: string,
  into: string,
): Promise<string[]> {
  const res = await fetch(`${app.baseURL}${path}`, { headers: { authorization: `Bearer ${app.apiKey}` } });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get("content-type"), "application/x-tar");
  await mkdir(into, { recursive: true });
  const names: string[] = [];
  for (const entry of await readTarArchive(new Uint8Array(await res.arrayBuffer()))) {
    await writeFile(join(into, entry.name), entry.data);
    names.push(entry.name);
  }
  return names.sort();
}
