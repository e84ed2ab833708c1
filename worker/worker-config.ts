// The worker's own settings, from the environment (documented in the README's jobs section):
//   WORKER_ID               name in the jobs table and events (default host-pid-random)
//   WORKER_LEASE_SECONDS    a job's lease; renewed every third of it (default 60)
//   WORKER_POLL_SECONDS     idle poll when no NOTIFY arrives (default 10)
//   WORKER_MICRO_BATCH      rows per forward/backward pass (default 4)
// DATABASE_URL, MODELS_DIR, DATA_DIR and TFJS_BACKEND are the service's (src/config.ts, engine).
import { hostname } from "node:os";
import { randomAlphanumeric } from "../src/store/ids.js";

export interface WorkerSettings {
  workerId: string;
  leaseSeconds: number;
  pollSeconds: number;
  microBatchSize: number;
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name} must be a positive number (got ${JSON.stringify(raw)})`);
  return value;
}

export function defaultWorkerId(): string {
  return `${hostname()}-${process.pid}-${randomAlphanumeric(4)}`;
}

export function loadWorkerSettings(env: NodeJS.ProcessEnv = process.env): WorkerSettings {
  return {
    workerId: env.WORKER_ID?.trim() || defaultWorkerId(),
    leaseSeconds: positive(env, "WORKER_LEASE_SECONDS", 60),
    pollSeconds: positive(env, "WORKER_POLL_SECONDS", 10),
    microBatchSize: Math.floor(positive(env, "WORKER_MICRO_BATCH", 4)),
  };
}
