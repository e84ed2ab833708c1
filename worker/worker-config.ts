// The worker's own settings, from the environment (documented in the README's jobs section):
//   WORKER_ID               name in the jobs table and events (default host-pid-random)
//   WORKER_LEASE_SECONDS    a job's lease; renewed every third of it (default 60)
//   WORKER_POLL_SECONDS     idle poll when no NOTIFY arrives (default 10)
//   WORKER_MICRO_BATCH      rows per forward/backward pass (default 4)
//   WORKER_MEMORY_BUDGET    memory a training step may use ("12G", "800M"; default: measured)
// and the training engine's, passed to it as options (the engine reads no environment):
//   TFJS_BACKEND            auto | tensorflow | wasm | cpu (default auto)
//   TUNEHOUSE_NATIVE_MATMUL the OpenBLAS matmul on wasm: 0 off, 1 required, auto (default)
//   TUNEHOUSE_NATIVE_ADDON  the addon's path (default: the one `npm run build:native` builds)
//   OPENBLAS_CORETYPE, OPENBLAS_NUM_THREADS  OpenBLAS's own (default: chosen from the CPU)
// DATABASE_URL, MODELS_DIR and DATA_DIR are the service's (src/config.ts).
import { hostname } from "node:os";
import { randomAlphanumeric } from "../src/store/ids.js";
import { type BackendOptions, parseBackendPreference } from "./engine/backend/backend.js";
import { parseNativeMatmulMode } from "./engine/backend/native-matmul.js";
import { configuredMemoryBudget, type MemoryBudget } from "./engine/train/memory-estimate.js";

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

/** The engine's backend options from the environment (TFJS_BACKEND, TUNEHOUSE_NATIVE_*, OPENBLAS_*). */
export function loadBackendOptions(env: NodeJS.ProcessEnv = process.env): BackendOptions {
  const threads = Number.parseInt(env.OPENBLAS_NUM_THREADS ?? "", 10);
  return {
    backend: parseBackendPreference(env.TFJS_BACKEND ?? "auto"),
    nativeMatmul: parseNativeMatmulMode(env.TUNEHOUSE_NATIVE_MATMUL),
    nativeAddonPath: env.TUNEHOUSE_NATIVE_ADDON || undefined,
    blasCoretype: env.OPENBLAS_CORETYPE || undefined,
    blasThreads: threads > 0 ? threads : undefined,
  };
}

/** WORKER_MEMORY_BUDGET, read when a job starts (so it can change without a restart); null when unset. */
export function loadMemoryBudget(env: NodeJS.ProcessEnv = process.env): MemoryBudget | null {
  return configuredMemoryBudget(env.WORKER_MEMORY_BUDGET, "WORKER_MEMORY_BUDGET");
}
