// Real service processes for fault tests on a Postgres server: a scratch database of the
// suite's own, `npm run worker` and `npm start` processes (through tsx, as the scripts run
// them), and the faults themselves (kill, terminate the database's connections).
//
//   const db = await scratchDatabase(process.env.TEST_DATABASE_URL!, "th_faults");
//   const api = await spawnApi(db.url, { modelsDir, apiKey });
//   const worker = spawnWorker(db.url, { modelsDir, workerId: "w1" });
//   await terminateBackends(db);          // only this database's connections
//   await db.drop();
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

export interface ScratchDatabase {
  name: string;
  url: string;
  serverUrl: string;
  drop(): Promise<void>;
}

async function adminQuery<T extends pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

export async function scratchDatabase(serverUrl: string, prefix: string): Promise<ScratchDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  await adminQuery(serverUrl, `CREATE DATABASE ${name}`);
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return {
    name,
    url: u.toString(),
    serverUrl,
    drop: () => adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).then(() => {}),
  };
}

/** Terminates every connection to this scratch database (never another database's). */
export async function terminateBackends(db: ScratchDatabase): Promise<number> {
  const rows = await adminQuery<{ n: number }>(
    db.serverUrl,
    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    [db.name],
  );
  return rows[0]?.n ?? 0;
}

export interface ServiceProcess {
  child: ChildProcess;
  /** stdout and stderr so far */
  output: string[];
  /** resolves to the exit code, or the signal's name */
  exited: Promise<number | string | null>;
}

function start(script: string, env: NodeJS.ProcessEnv): ServiceProcess {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  child.stdout!.on("data", (d) => output.push(String(d)));
  child.stderr!.on("data", (d) => output.push(String(d)));
  const exited = new Promise<number | string | null>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal)),
  );
  return { child, output, exited };
}

export function spawnWorker(
  url: string,
  opts: { modelsDir: string; workerId: string; leaseSeconds?: number; pollSeconds?: number },
): ServiceProcess {
  return start("worker/main.ts", {
    DATABASE_URL: url,
    MODELS_DIR: opts.modelsDir,
    WORKER_ID: opts.workerId,
    WORKER_LEASE_SECONDS: String(opts.leaseSeconds ?? 3),
    WORKER_POLL_SECONDS: String(opts.pollSeconds ?? 0.5),
  });
}

/** `npm start` on the server database, on a free port; resolves once it listens. */
export async function spawnApi(
  url: string,
  opts: { modelsDir: string; apiKey: string; env?: NodeJS.ProcessEnv },
): Promise<ServiceProcess & { baseURL: string }> {
  const proc = start("src/server.ts", {
    DATABASE_URL: url,
    MODELS_DIR: opts.modelsDir,
    API_KEYS: opts.apiKey,
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
    DATA_DIR: mkdtempSync(join(tmpdir(), "tunehouse-api-")),
    ...opts.env,
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const match = /Base URL: {2}(\S+)/.exec(proc.output.join(""));
    if (match) return { ...proc, baseURL: match[1]! };
    if (proc.child.exitCode !== null || Date.now() > deadline) {
      proc.child.kill("SIGKILL");
      throw new Error(`the api process did not start:\n${proc.output.join("")}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function stopProcess(proc: ServiceProcess | undefined): void {
  if (proc && proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill("SIGKILL");
}
