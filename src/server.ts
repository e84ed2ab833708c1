// Process entry (`npm start`): embedded PGlite in DATA_DIR, or the Postgres server in
// DATABASE_URL; migrations applied; keys provisioned; prints the base URL and a key.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { and, isNull, sql } from "drizzle-orm";
import { startEmbeddedWorker } from "../worker/embedded-worker.js";
import { configureBackend } from "../worker/engine/backend/backend.js";
import { startWebhookDispatcher } from "../worker/webhooks/webhook-dispatcher.js";
import { type Config, ConfigError, loadBackendOptions, loadConfig, loadShutdownGraceMs } from "./config.js";
import { buildApp } from "./http/app.js";
import { provisionEnvKeys } from "./store/auth/api-keys.js";
import { ensureEmbeddedKey } from "./store/auth/embedded-key.js";
import { type DatabaseHandle, openDatabase } from "./store/db/client.js";
import { apiKeys } from "./store/db/schema.js";
import { startSweeper } from "./store/maintenance.js";
import { listBaseModels } from "./store/models/base-models.js";
import { provisionEnvEndpoints } from "./store/webhooks/endpoint-repository.js";

/** First start without any model: write the tiny default model (the engine's generator). */
async function ensureDefaultModel(config: Config, log: (msg: string) => void): Promise<void> {
  if ((await listBaseModels(config.modelsDir)).length > 0) return;
  try {
    // Imported here, not at the top: only a first start without models needs the generator.
    const { ensureTinyModel } = await import("../worker/engine/hf/tiny-model.js");
    mkdirSync(config.modelsDir, { recursive: true });
    const id = await ensureTinyModel(config.modelsDir);
    log(`No model in ${config.modelsDir}: wrote the tiny default model '${id}'.`);
  } catch (err) {
    log(
      `No model in ${config.modelsDir}, and the default model could not be made (${(err as Error).message}).`,
    );
  }
}

async function main(): Promise<void> {
  let config: Config;
  let graceMs: number;
  try {
    config = loadConfig();
    graceMs = loadShutdownGraceMs();
    // chat serving sets up the backend on first use, with these options
    configureBackend(loadBackendOptions());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const embedded = config.databaseUrl === null;
  mkdirSync(config.dataDir, { recursive: true });
  const database: DatabaseHandle = await openDatabase(
    embedded
      ? { kind: "pglite", dataDir: join(config.dataDir, "pglite") }
      : { kind: "postgres", url: config.databaseUrl! },
  );
  const app = await buildApp({ config, database });
  const log = (msg: string) => app.log.info(msg);

  let keyToPrint: string | null = null;
  if (config.apiKeys !== null) {
    await provisionEnvKeys(database.db, config.apiKeys);
    log(`API_KEYS: ${config.apiKeys.length} key(s) provisioned in project 'default'.`);
  } else if (embedded) {
    const { key, created, path } = await ensureEmbeddedKey(database.db, config.dataDir);
    keyToPrint = key;
    log(`${created ? "Created an API key" : "Using the API key"} stored in ${path}.`);
  } else {
    const [active] = await database.db
      .select({ n: sql<number>`count(*)::int` })
      .from(apiKeys)
      .where(and(isNull(apiKeys.revokedAt)));
    if (active.n === 0) {
      app.log.warn("No API key exists: set API_KEYS or run `npm run keys -- create --project NAME`.");
    }
  }
  if (embedded) await ensureDefaultModel(config, log);
  await provisionEnvEndpoints(database.db, config.webhookUrls);
  if (config.webhookUrls.length > 0)
    log(`WEBHOOK_URLS: ${config.webhookUrls.length} endpoint(s) in project 'default'.`);

  const stopSweeper = startSweeper(database.db, app.log);
  const stopWorker = embedded ? await startEmbeddedWorker(config, database, log) : null;
  const webhooks = config.webhookDelivery
    ? await startWebhookDispatcher({ database, allowPrivate: config.webhookAllowPrivate, log })
    : null;
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const shownHost = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  const lines = [
    "",
    `  tunehouse is listening (${database.description})`,
    `  Base URL:  http://${shownHost}:${port}/v1`,
    `  Console:   http://${shownHost}:${port}/`,
    ...(keyToPrint ? [`  API key:   ${keyToPrint}`] : []),
    "",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log(`${signal}: shutting down`);
    stopSweeper();
    await webhooks?.stop();
    await stopWorker?.();
    // Requests in flight get a grace period; a slow upload or a live event stream would
    // otherwise hold the process forever. Cut ones leave no file (the upload is not published).
    const closed = app.close();
    const inTime = await Promise.race([
      closed.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref()),
    ]);
    if (!inTime) {
      app.log.warn(`requests still open after ${graceMs / 1000} s: closing their connections`);
      app.server.closeAllConnections();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 5_000).unref())]);
    }
    await database.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
