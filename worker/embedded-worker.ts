// Embedded mode (`npm start` without DATABASE_URL): PGlite lives in this process and cannot be
// shared with another one, so the training worker runs here too, but in a worker thread
// (worker/embedded-thread.ts): training would otherwise hold the api's event loop for whole
// steps. The thread reaches the database through the main thread's PGlite over a message port
// (src/store/db/pglite-over-port.ts). The engine loads only in that thread, so an api process on a
// Postgres server never loads tfjs (its workers are `npm run worker` processes).
import { Worker } from "node:worker_threads";
import type { Config } from "../src/config.js";
import type { DatabaseHandle } from "../src/store/db/client.js";
import { servePgliteOnPort } from "../src/store/db/pglite-over-port.js";

/**
 * The thread's entry: the TypeScript source under tsx (registered in the thread, which does not
 * inherit the loader), or the bundled file beside the bundled server (`npm run build:server`).
 */
function threadSource(): { code: string; eval: true } | { url: URL; eval: false } {
  if (import.meta.url.endsWith(".ts")) {
    const entry = new URL("./embedded-thread.ts", import.meta.url).href;
    const tsx = import.meta.resolve("tsx/esm/api");
    return {
      code: `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`,
      eval: true,
    };
  }
  return { url: new URL("./embedded-thread.mjs", import.meta.url), eval: false };
}

/** Starts the worker thread; resolves (once its loop runs) to its stop(): checkpoint, re-queue, leave. */
export async function startEmbeddedWorker(
  config: Config,
  database: DatabaseHandle,
  log: (message: string) => void,
): Promise<() => Promise<void>> {
  if (!database.pglite) throw new Error("the embedded worker needs the PGlite database");
  const source = threadSource();
  const thread = new Worker(source.eval ? source.code : source.url, {
    eval: source.eval,
    workerData: { modelsDir: config.modelsDir },
  });
  const stopServing = servePgliteOnPort(database.pglite, thread);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    thread.once("exit", (code) => {
      exited = true;
      if (code !== 0) log(`The worker thread exited with code ${code}`);
      void stopServing().then(resolve);
    }),
  );
  thread.on("error", (err) => log(`The worker thread failed: ${err.stack ?? err.message}`));
  const stopped = new Promise<void>((resolve) => {
    thread.on("message", (message: { t?: string; message?: string }) => {
      if (message.t === "log") log(String(message.message));
      else if (message.t === "fatal") log(`The worker thread failed: ${message.message}`);
      else if (message.t === "stopped") resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    const onMessage = (message: { t?: string; message?: string }) => {
      if (message.t !== "ready" && message.t !== "fatal") return;
      thread.off("message", onMessage);
      if (message.t === "ready") resolve();
      else reject(new Error(`the worker thread failed to start: ${message.message}`));
    };
    thread.on("message", onMessage);
    void exit.then(() => reject(new Error("the worker thread exited before it started")));
  });
  return async () => {
    if (exited) return;
    thread.postMessage({ t: "stop" });
    await Promise.race([stopped, exit]);
    await thread.terminate();
    await exit;
  };
}
