// Preflight estimate vs a real job (not a test): `npm run bench:preflight -- [--examples 300]
// [--epochs 2] [--batch auto] [--max-seq 128] [--model tiny-chatml] [--models-dir DIR]`.
//
// Starts the real app with an in-process worker on an embedded PGlite (or DATABASE_URL), uploads
// a generated chat file, asks POST /v1/fine_tuning/jobs/preflight, then runs the same body as a
// job and measures it: wall time from `running` to `succeeded` (polled every 50 ms), the steps
// the job ran, and memory: the wasm heap's size (it only grows, so after the job it is the job's
// high-water mark, model included; a step runs synchronously, so sampling tf.memory() from a
// timer would miss its peak) and the process's peak RSS. The load average is printed: on a
// shared machine the figures scale with it.

import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs-core";
import OpenAI, { toFile } from "openai";
import { DEFAULT_CONFIG, loadBackendOptions } from "../src/config.js";
import { buildApp } from "../src/http/app.js";
import type { PreflightObject } from "../src/http/fine-tuning/preflight.js";
import { createApiKey } from "../src/store/auth/api-keys.js";
import { openDatabase } from "../src/store/db/client.js";
import { initBackend } from "../worker/engine/backend/backend.js";
import { ensureTinyModel } from "../worker/engine/hf/tiny-model.js";
import { startWorker } from "../worker/worker-loop.js";

const { values } = parseArgs({
  options: {
    examples: { type: "string", default: "300" },
    epochs: { type: "string", default: "2" },
    "max-seq": { type: "string", default: "128" },
    batch: { type: "string", default: "auto" },
    model: { type: "string" },
    "models-dir": { type: "string" },
  },
});

function chatFile(n: number): string {
  const words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];
  let out = "";
  for (let i = 0; i < n; i++) {
    const answer = Array.from({ length: 3 + (i % 17) }, (_, k) => words[(i + k) % words.length]).join(" ");
    out += `${JSON.stringify({
      messages: [
        { role: "system", content: "You answer in code words." },
        { role: "user", content: `Code for ${i}?` },
        { role: "assistant", content: answer },
      ],
    })}\n`;
  }
  return out;
}

const MiB = 2 ** 20;
const wasmHeapBytes = (): number | null => {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.buffer.byteLength ?? null;
};

async function main(): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), "bench-preflight-"));
  const modelsDir = values["models-dir"] ?? join(scratch, "models");
  const model = values.model ?? (await ensureTinyModel(modelsDir));
  const backend = await initBackend(loadBackendOptions());
  await tf.ready();
  const database = await openDatabase(
    process.env.DATABASE_URL
      ? { kind: "postgres", url: process.env.DATABASE_URL }
      : { kind: "pglite", dataDir: null },
  );
  const config = {
    ...DEFAULT_CONFIG,
    port: 0,
    host: "127.0.0.1",
    dataDir: join(scratch, "data"),
    modelsDir,
    logLevel: "silent" as const,
  };
  const app = await buildApp({ config, database, logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.server.address() as { port: number };
  const { key } = await createApiKey(database.db, { projectName: "bench", source: "cli" });
  const client = new OpenAI({
    apiKey: key,
    baseURL: `http://127.0.0.1:${address.port}/v1`,
    maxRetries: 0,
    timeout: 600_000,
  });
  const microBatchSize = Number(process.env.WORKER_MICRO_BATCH ?? 4);
  const worker = await startWorker({
    database,
    modelsDir,
    settings: { workerId: "bench", leaseSeconds: 60, pollSeconds: 0.5, microBatchSize },
  });
  try {
    const file = await client.files.create({
      file: await toFile(Buffer.from(chatFile(Number(values.examples))), "train.jsonl"),
      purpose: "fine-tune",
    });
    const body = {
      model,
      training_file: file.id,
      seed: 42,
      method: {
        type: "supervised",
        supervised: {
          hyperparameters: {
            n_epochs: Number(values.epochs),
            max_seq_length: Number(values["max-seq"]),
            batch_size: values.batch === "auto" ? "auto" : Number(values.batch),
          },
        },
      },
    };
    const t0 = performance.now();
    const pre = await client.post<PreflightObject>("/fine_tuning/jobs/preflight", {
      body: { ...body, preview_examples: 0 },
    });
    const preflightMs = performance.now() - t0;
    const heapBefore = wasmHeapBytes();
    let job = await client.fineTuning.jobs.create(body as unknown as OpenAI.FineTuning.JobCreateParams);
    let runningAt: number | null = null;
    while (!["succeeded", "failed", "cancelled"].includes(job.status)) {
      await new Promise((r) => setTimeout(r, 50));
      job = await client.fineTuning.jobs.retrieve(job.id);
      if (job.status === "running" && runningAt === null) runningAt = performance.now();
    }
    const wallS = (performance.now() - (runningAt ?? t0)) / 1000;
    const events = [];
    for await (const e of client.fineTuning.jobs.listEvents(job.id, { limit: 100 })) events.push(e);
    const metrics = events.filter((e) => e.type === "metrics").reverse();
    const steps = metrics.length;
    console.log(
      `load average ${loadavg()
        .map((x) => x.toFixed(1))
        .join(" ")}`,
    );
    console.log(
      `backend: ${backend.name}${backend.nativeMatmul ? " + native OpenBLAS matmul" : ""}; WORKER_MICRO_BATCH ${microBatchSize}`,
    );
    console.log(
      `model ${model}: ${pre.training.parameters} params; ${values.examples} examples, ${values.epochs} epochs, ` +
        `batch_size ${pre.method.supervised.hyperparameters.batch_size}, max_seq_length ${values["max-seq"]}, ${process.env.DATABASE_URL ? "Postgres" : "PGlite"}`,
    );
    console.log(`preflight answered in ${preflightMs.toFixed(0)} ms`);
    console.log(
      `steps: preflight ${pre.training.total_steps} (${pre.training.steps_per_epoch}/epoch), job ${steps}; job status ${job.status}${job.error ? ` ${job.error.message}` : ""}`,
    );
    console.log(
      `duration: preflight estimate ${pre.training.estimated_duration_seconds} s; job running→succeeded ${wallS.toFixed(1)} s`,
    );
    console.log(`  source: ${pre.training.duration_source}`);
    const m = pre.training.memory;
    console.log(
      `memory: preflight estimate ${(m.estimated_peak_bytes / MiB).toFixed(1)} MiB (budget ${(m.budget_bytes / MiB).toFixed(0)} MiB, ${m.budget_source}; ` +
        `breakdown ${Object.entries(m.breakdown)
          .map(([k, v]) => `${k} ${(v / MiB).toFixed(2)}`)
          .join(", ")} MiB, checkpointing ${m.gradient_checkpointing})`,
    );
    const heapAfter = wasmHeapBytes();
    console.log(
      "  measured: " +
        (heapAfter !== null
          ? `wasm heap ${((heapBefore ?? 0) / MiB).toFixed(0)} → ${(heapAfter / MiB).toFixed(0)} MiB; `
          : "") +
        `peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
    );
  } finally {
    await worker.stop();
    await app.close();
    await database.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
