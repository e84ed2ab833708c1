// `npm run worker`: a training worker process. It needs DATABASE_URL (a Postgres server shared
// with the api and other workers; PGlite is single-process, so the embedded mode runs its
// worker inside `npm start` instead) and MODELS_DIR. It picks its tfjs backend once, claims
// one job at a time, and on SIGTERM/SIGINT checkpoints the running job at its next step,
// puts it back in the queue and exits 0.

import { ConfigError, loadBackendOptions, loadConfig, loadWorkerSettings } from "../src/config.js";
import { openDatabase } from "../src/store/db/client.js";
import { retryTransient } from "../src/store/db/retry-transient.js";
import { initBackend } from "./engine/backend/backend.js";
import { startWebhookDispatcher } from "./webhooks/webhook-dispatcher.js";
import { startWorker } from "./worker-loop.js";

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  let settings: ReturnType<typeof loadWorkerSettings>;
  try {
    config = loadConfig();
    settings = loadWorkerSettings();
  } catch (err) {
    console.error(`Configuration error: ${(err as Error).message}`);
    process.exit(2);
  }
  if (config.databaseUrl === null) {
    console.error(
      "npm run worker needs DATABASE_URL (a Postgres server). In embedded mode `npm start` already runs a worker in-process.",
    );
    process.exit(2);
  }
  const log = (message: string) => console.log(`${new Date().toISOString()} ${message}`);
  const backend = await initBackend(loadBackendOptions());
  log(`worker ${settings.workerId}: tfjs backend ${backend.name} (${backend.reason})`);
  // a worker started before its database (or while it restarts) waits for it
  const database = await retryTransient(
    () => openDatabase({ kind: "postgres", url: config.databaseUrl!, poolSize: 4 }),
    {
      maxDelayMs: 10_000,
      onRetry: (err, n, delay) =>
        log(
          `worker ${settings.workerId}: database unavailable (${(err as Error).message}); retry ${n} in ${delay} ms`,
        ),
    },
  );
  log(
    `worker ${settings.workerId}: ${database.description}, models in ${config.modelsDir}, lease ${settings.leaseSeconds}s`,
  );
  const worker = await startWorker({ database, modelsDir: config.modelsDir, settings, log });
  // workers send pending webhooks too, so events go out while every api process is down
  const webhooks = config.webhookDelivery
    ? await startWebhookDispatcher({ database, allowPrivate: config.webhookAllowPrivate, log })
    : null;
  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) return;
    signalled = true;
    log(`${signal}: finishing the current step, then exiting`);
    void worker.stop();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  await worker.done;
  await webhooks?.stop();
  await database.close();
  log(`worker ${settings.workerId}: stopped`);
  process.exit(0);
}

main().catch((e) => {
  if (e instanceof ConfigError) console.error(`Configuration error: ${e.message}`);
  else console.error(e);
  process.exit(1);
});
