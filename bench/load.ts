// Load run (not a test): `npm run bench:load -- [--db pglite|postgres|both] [--database-url URL]
// [--lists 2000] [--list-concurrency 50] [--uploads 40] [--upload-kb 512] [--sse 100] [--chats 8]
// [--training-lists 300] [--training-concurrency 10]`.
//
// Starts the real server (`src/server.ts` under tsx, on a free loopback port) on embedded PGlite
// (its worker thread trains) or on a Postgres server (a scratch database, created and dropped;
// plus one `worker/main.ts` process), then, all through HTTP on 127.0.0.1:
//   1. a training job on the tiny model; while it trains: `training-lists` lists at
//      `training-concurrency` (the api's latency during training) and `sse` clients on the job's
//      event stream, each of which must receive every event and the final `done`;
//   2. `lists` GET /v1/files at `list-concurrency`;
//   3. `uploads` concurrent multipart uploads, each downloaded again and compared byte for byte;
//   4. `chats` concurrent chat completions on the tiny model.
// Prints errors, p50/p99/max per scenario and the server process's peak RSS (sampled, and VmHWM).
// Bounded: fixed counts, a 10-minute cap on the whole run, loopback only.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { ensureTinyModel } from "../worker/engine/hf/tiny-model.js";

const { values } = parseArgs({
  options: {
    db: { type: "string", default: "both" },
    "database-url": {
      type: "string",
      default: process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
    },
    lists: { type: "string", default: "2000" },
    "list-concurrency": { type: "string", default: "50" },
    uploads: { type: "string", default: "40" },
    "upload-kb": { type: "string", default: "512" },
    sse: { type: "string", default: "100" },
    chats: { type: "string", default: "8" },
    "training-lists": { type: "string", default: "300" },
    "training-concurrency": { type: "string", default: "10" },
  },
});
const n = (name: keyof typeof values) => Number(values[name]);
const API_KEY = `sk-load-${randomBytes(8).toString("hex")}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const progress = (message: string) => process.stderr.write(`${new Date().toISOString()} ${message}\n`);

interface Figures {
  count: number;
  errors: number;
  p50: number;
  p99: number;
  max: number;
  firstError?: string;
}

function summarize(latencies: number[], errors: string[]): Figures {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : Number.NaN;
  return {
    count: latencies.length + errors.length,
    errors: errors.length,
    p50: at(0.5),
    p99: at(0.99),
    max: at(1),
    firstError: errors[0],
  };
}

/** Runs `total` calls of `one` with at most `concurrency` at once; timings in ms. */
async function pool(total: number, concurrency: number, one: (i: number) => Promise<void>): Promise<Figures> {
  const latencies: number[] = [];
  const errors: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) {
        const i = next++;
        const started = performance.now();
        try {
          await one(i);
          latencies.push(performance.now() - started);
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
    }),
  );
  return summarize(latencies, errors);
}

/** Peak RSS of a process: sampled from /proc every 100 ms, and the kernel's high-water mark. */
function watchRss(pid: number) {
  let peak = 0;
  const read = () => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
      peak = Math.max(peak, rss);
      return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    } catch {
      return 0;
    }
  };
  const timer = setInterval(read, 100);
  return {
    stop: () => {
      const hwm = read();
      clearInterval(timer);
      return { sampledPeakMiB: Math.round(peak / 2 ** 20), hwmMiB: Math.round(hwm / 2 ** 20) };
    },
  };
}

function start(script: string, env: NodeJS.ProcessEnv): { child: ChildProcess; output: string[] } {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  const output: string[] = [];
  child.stdout!.on("data", (d) => output.push(String(d)));
  child.stderr!.on("data", (d) => output.push(String(d)));
  return { child, output };
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

async function api(base: string, path: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(`${base}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${API_KEY}`, ...init.headers },
  });
  if (!res.ok)
    throw new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${(await res.text()).slice(0, 200)}`);
  return res;
}

function trainingFile(): string {
  let out = "";
  for (let i = 0; i < 20; i++) {
    out += `${JSON.stringify({
      messages: [
        { role: "user", content: `Capital ${i % 7}?` },
        { role: "assistant", content: `City ${i % 7}.` },
      ],
    })}\n`;
  }
  return out;
}

async function upload(base: string, name: string, bytes: Buffer, purpose = "fine-tune"): Promise<string> {
  const form = new FormData();
  form.set("purpose", purpose);
  form.set("file", new Blob([bytes]), name);
  return ((await (await api(base, "/files", { method: "POST", body: form })).json()) as { id: string }).id;
}

/** One SSE client: counts events until `done`; resolves to the number of events seen. */
async function sseClient(base: string, jobId: string): Promise<{ events: number; done: boolean }> {
  const res = await api(base, `/fine_tuning/jobs/${jobId}/events?stream=true`);
  const decoder = new TextDecoder();
  let buffer = "";
  let events = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (block.startsWith("event: done")) return { events, done: true };
      if (block.startsWith("id: ")) events++;
    }
  }
  return { events, done: false };
}

const running = new Set<ChildProcess>();
/** the server and worker processes die with the run, however it ends */
function stopAll(): void {
  for (const c of running) if (c.exitCode === null) c.kill("SIGKILL");
}

async function run(target: "pglite" | "postgres"): Promise<Record<string, unknown>> {
  const scratch = mkdtempSync(join(tmpdir(), "tunehouse-load-"));
  const modelsDir = join(scratch, "models");
  const model = await ensureTinyModel(modelsDir);
  const children: ChildProcess[] = [];
  let dbName: string | null = null;
  const serverUrl = values["database-url"]!;
  try {
    const env: NodeJS.ProcessEnv = {
      MODELS_DIR: modelsDir,
      DATA_DIR: join(scratch, "data"),
      API_KEYS: API_KEY,
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
    };
    if (target === "postgres") {
      dbName = `th_load_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
      await admin(serverUrl, `CREATE DATABASE ${dbName}`);
      const u = new URL(serverUrl);
      u.pathname = `/${dbName}`;
      env.DATABASE_URL = u.toString();
    }
    const server = start("src/server.ts", env);
    children.push(server.child);
    let base = "";
    for (const until = Date.now() + 120_000; !base; await sleep(100)) {
      base = /Base URL: {2}(\S+)/.exec(server.output.join(""))?.[1] ?? "";
      if (Date.now() > until || server.child.exitCode !== null)
        throw new Error(`server did not start:\n${server.output.join("")}`);
    }
    if (target === "postgres") {
      const worker = start("worker/main.ts", { ...env, WORKER_POLL_SECONDS: "0.5" });
      children.push(worker.child);
    }
    progress(`${target}: server at ${base}`);
    const rss = watchRss(server.child.pid!);
    const results: Record<string, unknown> = { target };

    // 1. a job trains; lists and SSE clients meanwhile
    const training = await upload(base, "train.jsonl", Buffer.from(trainingFile()));
    const method = {
      type: "supervised",
      supervised: { hyperparameters: { n_epochs: 3, batch_size: 1, max_seq_length: 48 } },
    };
    const job = (await (
      await api(base, "/fine_tuning/jobs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, training_file: training, method }),
      })
    ).json()) as { id: string };
    for (const until = Date.now() + 120_000; ; await sleep(100)) {
      const events = (await (await api(base, `/fine_tuning/jobs/${job.id}/events?limit=5`)).json()) as {
        data: { message: string }[];
      };
      if (events.data.some((e) => /^Step \d+\//.test(e.message))) break;
      if (Date.now() > until) throw new Error("the job did not start training");
    }
    progress(`${target}: job ${job.id} trains; lists and SSE clients`);
    const sse = Promise.all(
      Array.from({ length: n("sse") }, () =>
        sseClient(base, job.id).catch((err) => ({ events: -1, done: false, error: String(err) })),
      ),
    );
    results.listsDuringTraining = await pool(n("training-lists"), n("training-concurrency"), async () => {
      await (await api(base, "/files?limit=20")).json();
    });
    const streams = await sse;
    const finalJob = (await (await api(base, `/fine_tuning/jobs/${job.id}`)).json()) as { status: string };
    let total = 0;
    for (let after: string | null = null; ; ) {
      const page = (await (
        await api(base, `/fine_tuning/jobs/${job.id}/events?limit=100${after ? `&after=${after}` : ""}`)
      ).json()) as {
        data: { id: string }[];
        has_more: boolean;
      };
      total += page.data.length;
      if (!page.has_more) break;
      after = page.data.at(-1)!.id;
    }
    const complete = streams.filter((s) => s.done && s.events === total).length;
    results.job = finalJob.status;
    results.sse = {
      clients: streams.length,
      complete,
      eventsPerClient: total,
      errors: streams.length - complete,
    };

    progress(`${target}: lists`);
    // 2. lists
    results.lists = await pool(n("lists"), n("list-concurrency"), async () => {
      await (await api(base, "/files?limit=20")).json();
    });

    progress(`${target}: uploads`);
    // 3. uploads, byte-exact
    const kb = n("upload-kb");
    results.uploads = await pool(n("uploads"), n("uploads"), async (i) => {
      const bytes = randomBytes(kb * 1024);
      const id = await upload(base, `blob-${i}.bin`, bytes, "user_data");
      const back = Buffer.from(await (await api(base, `/files/${id}/content`)).arrayBuffer());
      const digest = (b: Buffer) => createHash("sha256").update(b).digest("hex");
      if (digest(back) !== digest(bytes)) throw new Error(`file ${id}: content differs`);
    });

    progress(`${target}: chats`);
    // 4. chats on the tiny model
    results.chats = await pool(n("chats"), n("chats"), async (i) => {
      await (
        await api(base, "/chat/completions", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            model,
            messages: [{ role: "user", content: `Capital ${i % 7}?` }],
            max_tokens: 16,
            temperature: 0,
          }),
        })
      ).json();
    });
    results.serverRss = rss.stop();
    return results;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await sleep(500);
    if (dbName) await admin(serverUrl, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    rmSync(scratch, { recursive: true, force: true });
  }
}

const fmt = (f: unknown) => {
  if (!f || typeof f !== "object" || !("p50" in f)) return JSON.stringify(f);
  const x = f as Figures;
  return `${x.count} requests, ${x.errors} errors, p50 ${x.p50.toFixed(1)} ms, p99 ${x.p99.toFixed(1)} ms, max ${x.max.toFixed(1)} ms${x.firstError ? ` (first error: ${x.firstError})` : ""}`;
};

const cap = setTimeout(() => {
  console.error("load run: over 10 minutes, stopping");
  stopAll();
  process.exit(1);
}, 600_000);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    stopAll();
    process.exit(130);
  });
}
const targets =
  values.db === "both" ? (["pglite", "postgres"] as const) : [values.db as "pglite" | "postgres"];
for (const target of targets) {
  const r = await run(target);
  console.log(`\n== ${target}`);
  for (const [k, v] of Object.entries(r)) if (k !== "target") console.log(`  ${k}: ${fmt(v)}`);
}
clearTimeout(cap);
