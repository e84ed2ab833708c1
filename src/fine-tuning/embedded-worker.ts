// Embedded mode (`npm start` without DATABASE_URL): PGlite lives in this process and cannot be
// shared, so the training worker runs here too. The engine is imported only now, so an api
// process on a Postgres server never loads tfjs (its workers are `npm run worker` processes).
import type { Config } from "../config.js";
import type { DatabaseHandle } from "../db/client.js";

/** Starts the in-process worker; resolves to its stop() (checkpoint, re-queue, leave). */
export async function startEmbeddedWorker(
  config: Config,
  database: DatabaseHandle,
  log: (message: string) => void,
): Promise<() => Promise<void>> {
  const [{ initBackend }, { loadWorkerSettings }, { startWorker }] = await Promise.all([
    import("../../worker/engine/backend.js"),
    import("../../worker/worker-config.js"),
    import("../../worker/worker-loop.js"),
  ]);
  const settings = loadWorkerSettings();
  const backend = await initBackend();
  log(`In-process worker ${settings.workerId}: tfjs backend ${backend.name} (${backend.reason})`);
  const worker = await startWorker({ database, modelsDir: config.modelsDir, settings, log });
  return () => worker.stop();
}
