// LoRA jobs through the SDK at published models' shapes (random weights, real vocabularies):
// SmolLM2-135M at 4 × 256 and Qwen2.5-0.5B at 1 × 512 train to their last step on the default
// backend, within the PyTorch peer's peak memory, their adapters load and chat answers on them.
// Minutes per job on a 2-core machine, so skipped unless REAL_SIZE=1 (REAL_SIZE_SHAPES picks
// shapes, e.g. smollm2-135m). The models are written once under models/ (git-ignored).
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ensureRealSizeModel, type ShapeName } from "../../../bench/real-size-shapes.js";
import { startEmbeddedWorker } from "../../../worker/embedded-worker.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import { allEvents, isFinished, uploadTraining, waitForJob } from "../../support/job-fixtures.js";
import { startTestApp, type TestApp } from "../../support/test-app.js";

const enabled = process.env.REAL_SIZE === "1";
const modelsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../models");
const CASES: { shape: ShapeName; rows: number; seq: number; peerPeakGb: number }[] = [
  { shape: "smollm2-135m", rows: 4, seq: 256, peerPeakGb: 4.9 },
  { shape: "qwen2.5-0.5b", rows: 1, seq: 512, peerPeakGb: 7.6 },
];
const wanted = (process.env.REAL_SIZE_SHAPES ?? "").split(",").filter(Boolean);

/** Chat examples of about `tokens` byte-level tokens each, so packing fills rows of that length. */
function longLines(n: number, tokens: number): string {
  let out = "";
  for (let i = 0; i < n; i++) {
    const answer = `Answer ${i}: ${"the quick brown fox jumps over the lazy dog ".repeat(Math.ceil(tokens / 60))}`;
    out += `${JSON.stringify({
      messages: [
        { role: "user", content: `Question ${i}?` },
        { role: "assistant", content: answer.slice(0, Math.floor(tokens * 0.8)) },
      ],
    })}\n`;
  }
  return out;
}

const target = testDatabases()[0]!;
describe(`real-size LoRA jobs through the API [${target.name}]`, {
  skip: !enabled && "set REAL_SIZE=1",
}, () => {
  let db: TestDatabase;
  let app: TestApp;
  let stopWorker: (() => Promise<void>) | null = null;
  const workerLog: string[] = [];

  before(async () => {
    for (const c of CASES)
      if (!wanted.length || wanted.includes(c.shape)) await ensureRealSizeModel(modelsDir, c.shape);
    db = await target.open();
    app = await startTestApp({ database: db.handle, config: { modelsDir } });
    // as `npm start` runs it (no DATABASE_URL): training in a worker thread, off the api's event
    // loop, which a real-size step would otherwise hold for many seconds
    stopWorker = await startEmbeddedWorker(app.config, db.handle, (m) => workerLog.push(m));
  });
  after(async () => {
    await stopWorker?.();
    if (process.env.JOBS_TEST_LOG) console.log(workerLog.join("\n"));
    await app?.close();
    await db?.dispose();
  });

  for (const c of CASES) {
    it(`${c.shape}: LoRA r8 at ${c.rows} × ${c.seq} trains, within the peer's ${c.peerPeakGb} GB, and chats`, {
      skip: wanted.length > 0 && !wanted.includes(c.shape),
    }, async () => {
      // at least the API's minimum of 10 examples, `perRow` packed into each row, so that the job
      // makes two steps of about rows × seq tokens (a text of n units encodes to ~0.75 n tokens)
      const perRow = Math.ceil(10 / (2 * c.rows));
      const file = await uploadTraining(app.client, longLines(2 * c.rows * perRow, (1.25 * c.seq) / perRow));
      const started = Date.now();
      const job = await app.client.fineTuning.jobs.create({
        model: c.shape,
        training_file: file,
        method: {
          type: "supervised",
          supervised: {
            hyperparameters: {
              n_epochs: 1,
              batch_size: c.rows,
              max_seq_length: c.seq,
              lora_rank: 8,
            } as never,
          },
        },
      });
      const done = await waitForJob(app.client, job.id, isFinished, 3_600_000);
      assert.equal(done.status, "succeeded", JSON.stringify(done.error));
      const events = await allEvents(app.client, job.id, 100);
      const metrics = events.filter((e) => e.type === "metrics");
      const steps = metrics.map((e) => e.data as Record<string, number>);
      // events carry whole seconds: the gaps between metrics events are the step times
      const stepSeconds = metrics.slice(1).map((e, i) => e.created_at - metrics[i]!.created_at);
      const backend = events.find((e) => /^Training backend: /.test(e.message));
      const peakGb = process.resourceUsage().maxRSS / 1024 ** 2 / 1.073741824;
      console.log(
        `${c.shape} ${c.rows}×${c.seq}: ${steps.length} steps (${stepSeconds.join("/")} s apart, loss ${steps.map((m) => m.train_loss?.toFixed(3)).join("→")}) in ${((Date.now() - started) / 1000).toFixed(0)} s from create to done; ${backend?.message}; process peak RSS ${peakGb.toFixed(2)} GB`,
      );
      assert.ok(steps.length >= 1);
      assert.ok(
        peakGb <= c.peerPeakGb + 1,
        `peak RSS ${peakGb.toFixed(2)} GB (the api, PGlite and the test runner share this process)`,
      );
      const chatStarted = Date.now();
      const reply = await app.client.chat.completions.create(
        {
          model: done.fine_tuned_model!,
          messages: [{ role: "user", content: "Question 1?" }],
          max_tokens: 8,
        },
        // the first chat loads the base model on the api's thread: minutes on a busy 2-core machine
        { timeout: 900_000 },
      );
      assert.equal(reply.choices.length, 1);
      assert.equal(typeof reply.choices[0]!.message.content, "string");
      console.log(
        `${c.shape}: first chat on the tuned model answered in ${((Date.now() - chatStarted) / 1000).toFixed(0)} s`,
      );
    });
  }
});
