// Environment → typed configuration, validated once at start. Every variable the service
// reads is listed here (and in the README's configuration table); nothing else reads
// process.env, so tests build a Config directly. The api's settings are `loadConfig`, a
// worker's own are `loadWorkerSettings`, `npm start`'s shutdown grace is `loadShutdownGraceMs`,
// and what the api assumes of the workers' training set-up is `workerSetupFromEnv`.
import { hostname } from "node:os";
import { resolve } from "node:path";
import { type BackendOptions, parseBackendPreference } from "../worker/engine/backend/backend.js";
import { parseNativeMatmulMode } from "../worker/engine/backend/native-matmul.js";
import { configuredMemoryBudget, type MemoryBudget } from "../worker/engine/train/memory-estimate.js";
import { randomAlphanumeric } from "./store/ids.js";
import { webhookSecretProblem } from "./store/webhooks/webhook-signature.js";
import { webhookUrlProblem } from "./store/webhooks/webhook-url-policy.js";

export interface Config {
  /** TCP port of the HTTP server (0 = any free port). */
  port: number;
  /** Interface to listen on. */
  host: string;
  /** Folder for embedded Postgres (PGlite) data and the embedded API key file. */
  dataDir: string;
  /** postgres://… of an external server; null = embedded PGlite in `dataDir`. */
  databaseUrl: string | null;
  /** Folder of base models (Hugging Face causal LM folders, depth 1 or 2). */
  modelsDir: string;
  /** Keys to provision in the `default` project at start; null = not set. */
  apiKeys: string[] | null;
  /** Largest accepted file (POST /v1/files and completed uploads), in bytes. */
  maxFileBytes: number;
  /** Largest accepted line of a fine-tune JSONL file, in bytes. */
  maxLineBytes: number;
  /** Largest part of an Upload (POST /v1/uploads/{id}/parts), in bytes. */
  maxUploadPartBytes: number;
  /** Largest total size of an Upload, in bytes. */
  maxUploadBytes: number;
  /** How many schema problems of a fine-tune file are recorded. */
  maxValidationErrors: number;
  /** Tuned models (adapters, or whole fully fine-tuned models) kept loaded for chat, least recently used evicted. */
  adapterCacheSize: number;
  /** pino log level (fatal|error|warn|info|debug|trace|silent). */
  logLevel: string;
  /** WEBHOOK_URLS + WEBHOOK_SECRET: endpoints provisioned in project `default` at start. */
  webhookUrls: { url: string; secret: string }[];
  /** Whether webhooks may target loopback, private and link-local addresses. */
  webhookAllowPrivate: boolean;
  /** Whether this process sends pending webhook deliveries (any api/worker process may). */
  webhookDelivery: boolean;
}

export const DEFAULT_CONFIG: Config = {
  port: 8000,
  host: "127.0.0.1",
  dataDir: "./data",
  databaseUrl: null,
  modelsDir: "./models",
  apiKeys: null,
  maxFileBytes: 512 * 1024 * 1024,
  maxLineBytes: 8 * 1024 * 1024,
  maxUploadPartBytes: 64 * 1024 * 1024,
  maxUploadBytes: 8 * 1024 * 1024 * 1024,
  maxValidationErrors: 20,
  adapterCacheSize: 16,
  logLevel: "info",
  webhookUrls: [],
  webhookAllowPrivate: false,
  webhookDelivery: true,
};

export class ConfigError extends Error {}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw.trim());
  if (!Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer >= ${min} (got ${JSON.stringify(raw)})`);
  }
  return value;
}

function text(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = env[name];
  return raw === undefined || raw.trim() === "" ? fallback : raw.trim();
}

function boolean(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === "") return fallback;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false (got ${JSON.stringify(env[name])})`);
}

function list(env: NodeJS.ProcessEnv, name: string): string[] {
  return (env[name] ?? "")
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

/** WEBHOOK_URLS=u1,u2 with WEBHOOK_SECRET=s (one for all) or s1,s2 (one per URL, in order). */
function webhookUrls(env: NodeJS.ProcessEnv, allowPrivate: boolean): Config["webhookUrls"] {
  const urls = list(env, "WEBHOOK_URLS");
  const secrets = list(env, "WEBHOOK_SECRET");
  if (urls.length === 0) {
    if (secrets.length > 0) throw new ConfigError("WEBHOOK_SECRET is set but WEBHOOK_URLS is not");
    return [];
  }
  if (secrets.length !== 1 && secrets.length !== urls.length) {
    throw new ConfigError(
      `WEBHOOK_SECRET must hold one whsec_ secret, or one per WEBHOOK_URLS entry (${urls.length}); got ${secrets.length}`,
    );
  }
  return urls.map((url, i) => {
    const problem = webhookUrlProblem(url, allowPrivate);
    if (problem) throw new ConfigError(`WEBHOOK_URLS: ${url} ${problem}`);
    const secret = secrets.length === 1 ? secrets[0] : secrets[i];
    const secretProblem = webhookSecretProblem(secret);
    if (secretProblem) throw new ConfigError(`WEBHOOK_SECRET ${secretProblem}`);
    return { url, secret };
  });
}

const LOG_LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

/** Reads and checks the environment; throws ConfigError naming the variable on a bad value. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = text(env, "DATABASE_URL", "");
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(`DATABASE_URL must start with postgres:// or postgresql:// (got ${databaseUrl})`);
  }
  const apiKeysRaw = env.API_KEYS;
  let apiKeys: string[] | null = null;
  if (apiKeysRaw !== undefined && apiKeysRaw.trim() !== "") {
    apiKeys = apiKeysRaw
      .split(",")
      .map((k) => k.trim())
      .filter((k) => k.length > 0);
    const short = apiKeys.find((k) => k.length < 8);
    if (short !== undefined) throw new ConfigError("API_KEYS: every key must be at least 8 characters long");
  }
  const logLevel = text(env, "LOG_LEVEL", DEFAULT_CONFIG.logLevel);
  if (!LOG_LEVELS.has(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${[...LOG_LEVELS].join(", ")} (got ${logLevel})`);
  }
  const webhookAllowPrivate = boolean(env, "WEBHOOK_ALLOW_PRIVATE", DEFAULT_CONFIG.webhookAllowPrivate);
  return {
    port: integer(env, "PORT", DEFAULT_CONFIG.port, 0),
    host: text(env, "HOST", DEFAULT_CONFIG.host),
    dataDir: resolve(text(env, "DATA_DIR", DEFAULT_CONFIG.dataDir)),
    databaseUrl: databaseUrl || null,
    modelsDir: resolve(text(env, "MODELS_DIR", DEFAULT_CONFIG.modelsDir)),
    apiKeys,
    maxFileBytes: integer(env, "MAX_FILE_BYTES", DEFAULT_CONFIG.maxFileBytes, 1),
    maxLineBytes: integer(env, "MAX_LINE_BYTES", DEFAULT_CONFIG.maxLineBytes, 1),
    maxUploadPartBytes: integer(env, "MAX_UPLOAD_PART_BYTES", DEFAULT_CONFIG.maxUploadPartBytes, 1),
    maxUploadBytes: integer(env, "MAX_UPLOAD_BYTES", DEFAULT_CONFIG.maxUploadBytes, 1),
    maxValidationErrors: integer(env, "MAX_VALIDATION_ERRORS", DEFAULT_CONFIG.maxValidationErrors, 0),
    adapterCacheSize: integer(env, "ADAPTER_CACHE_SIZE", DEFAULT_CONFIG.adapterCacheSize, 1),
    logLevel,
    webhookUrls: webhookUrls(env, webhookAllowPrivate),
    webhookAllowPrivate,
    webhookDelivery: boolean(env, "WEBHOOK_DELIVERY", DEFAULT_CONFIG.webhookDelivery),
  };
}

/** SHUTDOWN_GRACE_SECONDS: how long SIGTERM waits for requests in flight (default 10). */
export function loadShutdownGraceMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SHUTDOWN_GRACE_SECONDS?.trim();
  if (!raw) return 10_000;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new ConfigError(
      `SHUTDOWN_GRACE_SECONDS must be a number of seconds ≥ 0 (got ${JSON.stringify(raw)})`,
    );
  }
  return seconds * 1000;
}

// A worker's own settings (documented in the README's jobs section); DATABASE_URL, MODELS_DIR
// and DATA_DIR are loadConfig's:
//   WORKER_ID               name in the jobs table and events (default host-pid-random)
//   WORKER_LEASE_SECONDS    a job's lease; renewed every third of it (default 60)
//   WORKER_POLL_SECONDS     idle poll when no NOTIFY arrives (default 10)
//   WORKER_MICRO_BATCH      rows per forward/backward pass (default 4)
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
    throw new ConfigError(`${name} must be a positive number (got ${JSON.stringify(raw)})`);
  return value;
}

export function defaultWorkerId(): string {
  return `${hostname()}-${process.pid}-${randomAlphanumeric(4)}`;
}

/** Reads and checks the WORKER_* variables; throws ConfigError naming the variable on a bad value. */
export function loadWorkerSettings(env: NodeJS.ProcessEnv = process.env): WorkerSettings {
  return {
    workerId: env.WORKER_ID?.trim() || defaultWorkerId(),
    leaseSeconds: positive(env, "WORKER_LEASE_SECONDS", 60),
    pollSeconds: positive(env, "WORKER_POLL_SECONDS", 10),
    microBatchSize: Math.floor(positive(env, "WORKER_MICRO_BATCH", 4)),
  };
}

/** What the api knows of the workers' training set-up (for a job's preflight): their environment's defaults. */
export interface WorkerSetup {
  backend: string;
  microBatchSize: number;
  /** the workers' WORKER_MEMORY_BUDGET; unset: measured as a worker would on this machine */
  memoryBudget?: MemoryBudget | null;
}

/** TFJS_BACKEND and WORKER_MICRO_BATCH as the api reads them: leniently, a bad value is the default. */
export function workerSetupFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerSetup {
  const requested = (env.TFJS_BACKEND ?? "auto").trim().toLowerCase();
  // `auto` takes tfjs-node where it is installed; the API cannot see the workers' machines, so it
  // assumes the fallback every machine has
  const backend = ["tensorflow", "wasm", "cpu"].includes(requested) ? requested : "wasm";
  const micro = Number(env.WORKER_MICRO_BATCH ?? 4);
  return {
    backend,
    microBatchSize: Number.isFinite(micro) && micro >= 1 ? Math.floor(micro) : 4,
    memoryBudget: loadMemoryBudget(env),
  };
}

// The training engine's settings, passed to it as options (the engine reads no environment):
//   TFJS_BACKEND            auto | tensorflow | wasm | cpu (default auto)
//   TUNEHOUSE_NATIVE_MATMUL the OpenBLAS matmul on wasm: 0 off, 1 required, auto (default)
//   TUNEHOUSE_NATIVE_ADDON  the addon's path (default: the one `npm run build:native` builds)
//   OPENBLAS_CORETYPE, OPENBLAS_NUM_THREADS  OpenBLAS's own (default: chosen from the CPU)
//   WORKER_MEMORY_BUDGET    memory a training step may use ("12G", "800M"; default: measured)

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
