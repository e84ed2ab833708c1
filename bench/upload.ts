// Upload benchmark (not a test): `npm run bench:upload -- [--mb 200] [--base-url URL] [--api-key KEY]
// [--server-pid PID] [--purpose fine-tune|user_data|...] [--keep-file] [--keep-remote]`.
//
// Generates a fine-tune JSONL of chat examples in a temp file, uploads it with the official
// `openai` SDK from fs.createReadStream (so the body is streamed, chunked, without
// Content-Length, the way real clients send big files), and prints the throughput and the
// server's memory: its peak RSS (VmHWM) and the RSS sampled during the upload. The server
// must already run, ideally with DATABASE_URL pointing at a real Postgres: `npm run
// start:compiled` (bundled, no tsx loader, 4 MiB semi-space) is the configuration the memory
// target is measured on; `npm start` (tsx) carries ~60 MiB more.
import { execFileSync } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdtemp, open, readdir, readFile, readlink, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import OpenAI from "openai";

const MB = 1_000_000;
// Bigger reads than the 64 KiB default keep the client's per-chunk overhead out of the figure.
const READ_CHUNK_BYTES = 1024 * 1024;

interface BenchOptions {
  mb: number;
  baseUrl: string;
  apiKey: string;
  serverPid: number | null;
  keepFile: boolean;
  keepRemote: boolean;
  /** fine-tune (validated while it streams) by default; e.g. user_data to measure storage alone */
  purpose: string;
}

function readOptions(): BenchOptions {
  const { values } = parseArgs({
    options: {
      mb: { type: "string", default: "200" },
      "base-url": { type: "string", default: "http://127.0.0.1:8000/v1" },
      "api-key": { type: "string" },
      "server-pid": { type: "string" },
      "keep-file": { type: "boolean", default: false },
      "keep-remote": { type: "boolean", default: false },
      purpose: { type: "string", default: "fine-tune" },
    },
  });
  const mb = Number(values.mb);
  if (!Number.isFinite(mb) || mb <= 0) throw new Error(`--mb must be a positive number (got ${values.mb})`);
  const apiKey = values["api-key"] ?? process.env.OPENAI_API_KEY;
  if (!apiKey) throw new Error("an API key is needed: pass --api-key or set OPENAI_API_KEY");
  const serverPid = values["server-pid"] === undefined ? null : Number(values["server-pid"]);
  if (serverPid !== null && !Number.isSafeInteger(serverPid)) {
    throw new Error(`--server-pid must be a process id (got ${values["server-pid"]})`);
  }
  return {
    mb,
    baseUrl: values["base-url"]!,
    apiKey,
    serverPid,
    keepFile: values["keep-file"]!,
    keepRemote: values["keep-remote"]!,
    purpose: values.purpose!,
  };
}

/** A deterministic, varied chat example: system + user + assistant, a few hundred bytes to a few KB. */
function chatExampleLine(i: number): string {
  const topics = [
    "the tides",
    "compound interest",
    "TCP slow start",
    "sourdough",
    "Rayleigh scattering",
    "B-trees",
  ];
  const topic = topics[i % topics.length];
  const messages = [
    {
      role: "system",
      content: "You are a concise, accurate assistant. Réponds en français si on te le demande.",
    },
    {
      role: "user",
      content: `Question ${i}: explain ${topic} in plain words. ${"Please be precise. ".repeat(i % 7)}`,
    },
    {
      role: "assistant",
      content: `Here is how ${topic} works (example ${i}). ${"It follows from a few simple rules, step by step. ".repeat(
        3 + (i % 40),
      )}— done ✓`,
    },
  ];
  return `${JSON.stringify({ messages })}\n`;
}

/** Writes at least `bytes` bytes of JSONL to `path` (whole lines, so slightly more). */
async function writeJsonl(path: string, bytes: number): Promise<{ bytes: number; lines: number }> {
  const handle = await open(path, "w");
  let written = 0;
  let lines = 0;
  try {
    while (written < bytes) {
      const block: string[] = [];
      let blockBytes = 0;
      while (blockBytes < 4 * MB && written + blockBytes < bytes) {
        const line = chatExampleLine(lines++);
        block.push(line);
        blockBytes += Buffer.byteLength(line);
      }
      await handle.write(block.join(""));
      written += blockBytes;
    }
  } finally {
    await handle.close();
  }
  return { bytes: written, lines };
}

/** The pid of the process listening on `port`: `ss -ltnp` first, then /proc (socket inode → fd). */
async function findListeningPid(port: number): Promise<number | null> {
  try {
    const out = execFileSync("ss", ["-ltnpH", `sport = :${port}`], { encoding: "utf8" });
    const match = /pid=(\d+)/.exec(out);
    if (match) return Number(match[1]);
  } catch {
    // no ss, or not allowed: fall through to /proc
  }
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await readFile(table, "utf8").catch(() => "");
    for (const row of text.split("\n").slice(1)) {
      const cols = row.trim().split(/\s+/);
      // cols[1] = local "ADDR:PORT" in hex, cols[3] = state (0A = LISTEN), cols[9] = inode
      if (cols.length > 9 && cols[3] === "0A" && Number.parseInt(cols[1]!.split(":")[1]!, 16) === port) {
        inodes.add(`socket:[${cols[9]}]`);
      }
    }
  }
  if (inodes.size === 0) return null;
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fds = await readdir(`/proc/${entry}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => "");
      if (inodes.has(target)) return Number(entry);
    }
  }
  return null;
}

/** VmRSS and VmHWM (peak RSS) of a process, in bytes; null when it cannot be read. */
async function memoryOf(pid: number): Promise<{ rss: number; hwm: number } | null> {
  const text = await readFile(`/proc/${pid}/status`, "utf8").catch(() => null);
  if (text === null) return null;
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? Number.NaN);
  return { rss: kib("VmRSS") * 1024, hwm: kib("VmHWM") * 1024 };
}

/** User + system CPU seconds a process has used (/proc/<pid>/stat, fields 14 and 15, in clock ticks). */
async function cpuSecondsOf(pid: number): Promise<number | null> {
  const text = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => null);
  if (text === null) return null;
  // The command name (field 2) may hold spaces; the fields after its closing ")" are fixed.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const ticksPerSecond = 100; // USER_HZ on Linux
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

async function main(): Promise<void> {
  const options = readOptions();
  const port = Number(new URL(options.baseUrl).port || (options.baseUrl.startsWith("https:") ? 443 : 80));
  const pid = options.serverPid ?? (await findListeningPid(port));
  if (pid === null)
    console.warn(`could not find the server's pid on port ${port}: memory will not be reported`);

  const dir = await mkdtemp(join(tmpdir(), "bench-upload-"));
  const path = join(dir, `bench-${options.mb}mb.jsonl`);
  try {
    const generated = await writeJsonl(path, options.mb * MB);
    const size = (await stat(path)).size;
    console.log(`generated ${path}: ${(size / MB).toFixed(1)} MB, ${generated.lines} chat examples`);

    const client = new OpenAI({
      apiKey: options.apiKey,
      baseURL: options.baseUrl,
      maxRetries: 0,
      timeout: 60 * 60_000,
    });
    const before = pid === null ? null : await memoryOf(pid);
    const cpuBefore = pid === null ? null : await cpuSecondsOf(pid);
    let peakSampledRss = before?.rss ?? 0;
    const sampler =
      pid === null
        ? null
        : setInterval(() => {
            void memoryOf(pid).then((m) => {
              if (m && m.rss > peakSampledRss) peakSampledRss = m.rss;
            });
          }, 50);

    const started = performance.now();
    let file: OpenAI.FileObject;
    try {
      file = await client.files.create({
        file: createReadStream(path, { highWaterMark: READ_CHUNK_BYTES }),
        purpose: options.purpose as OpenAI.FilePurpose,
      });
    } finally {
      if (sampler) clearInterval(sampler);
    }
    const seconds = (performance.now() - started) / 1000;
    const after = pid === null ? null : await memoryOf(pid);
    const cpuAfter = pid === null ? null : await cpuSecondsOf(pid);

    const retrieved = await client.files.retrieve(file.id);
    const bytesOk = file.bytes === size && retrieved.bytes === size;

    console.log(`uploaded ${file.id} (status ${file.status}) in ${seconds.toFixed(2)} s`);
    console.log(
      `throughput: ${(size / MB / seconds).toFixed(1)} MB/s (${(size / 1024 / 1024 / seconds).toFixed(1)} MiB/s)`,
    );
    console.log(
      `bytes: local ${size}, create() ${file.bytes}, retrieve() ${retrieved.bytes} → ${bytesOk ? "OK" : "MISMATCH"}`,
    );
    const extra = Object.fromEntries(
      Object.entries(retrieved).filter(
        ([k]) =>
          !["id", "object", "bytes", "created_at", "filename", "purpose", "status", "expires_at"].includes(k),
      ),
    );
    if (Object.keys(extra).length > 0) console.log("other file fields:", JSON.stringify(extra));
    if (pid !== null && before && after) {
      console.log(
        `server pid ${pid}: RSS before ${mib(before.rss)}, peak sampled during upload ${mib(
          Math.max(peakSampledRss, after.rss),
        )}, after ${mib(after.rss)}; VmHWM (peak since start) ${mib(after.hwm)}`,
      );
    }
    if (cpuBefore !== null && cpuAfter !== null) {
      // Near 100% means the server's one JS thread is the bottleneck; far below, it waits (client, Postgres, CPU share).
      const used = cpuAfter - cpuBefore;
      console.log(
        `server CPU during the upload: ${used.toFixed(2)} s (${((100 * used) / seconds).toFixed(0)}% of wall time)`,
      );
    }
    if (!options.keepRemote) await client.files.delete(file.id);
    if (!bytesOk) process.exitCode = 1;
  } finally {
    if (options.keepFile) console.log(`kept ${path}`);
    else await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
