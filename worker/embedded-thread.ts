// The embedded server's training worker, in a worker thread of `npm start` (PGlite mode):
// training runs here, off the api's event loop, and the database is the main thread's PGlite,
// reached through src/store/db/pglite-over-port.ts. Messages from the main thread: `stop` (checkpoint
// the running job, re-queue it, leave the loop; answered by `stopped`). To it: `log` lines,
// and `ready` once the loop runs.
import { parentPort, workerData } from "node:worker_threads";
import type { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import { loadBackendOptions, loadWorkerSettings } from "../src/config.js";
import type { Database, DatabaseHandle } from "../src/store/db/client.js";
import { PgliteOverPort } from "../src/store/db/pglite-over-port.js";
import * as schema from "../src/store/db/schema.js";
import { initBackend } from "./engine/backend/backend.js";
import { startWorker } from "./worker-loop.js";

export interface EmbeddedThreadData {
  modelsDir: string;
}

async function main(): Promise<void> {
  const port = parentPort!;
  const { modelsDir } = workerData as EmbeddedThreadData;
  const log = (message: string) => port.postMessage({ t: "log", message });
  const client = new PgliteOverPort(port);
  const database: DatabaseHandle = {
    db: drizzle({ client: client as unknown as PGlite, schema }) as unknown as Database,
    kind: "pglite",
    description: "PGlite (the api's, through a message port)",
    close: async () => {},
  };
  const settings = loadWorkerSettings();
  const backend = await initBackend(loadBackendOptions());
  log(
    `In-process worker ${settings.workerId} (worker thread): tfjs backend ${backend.name} (${backend.reason})`,
  );
  const worker = await startWorker({ database, modelsDir, settings, log });
  port.on("message", (message: { t?: string }) => {
    if (message.t === "stop") void worker.stop().then(() => port.postMessage({ t: "stopped" }));
  });
  port.postMessage({ t: "ready" });
}

main().catch((err) => {
  parentPort!.postMessage({ t: "fatal", message: (err as Error).stack ?? String(err) });
});
