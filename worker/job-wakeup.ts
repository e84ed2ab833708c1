// LISTEN for new work: the api NOTIFYs `fine_tuning_jobs` (payload: the job id) when a job is
// created, resumed or re-queued, and idle workers wake at once instead of at their next poll.
// On a Postgres server this is a dedicated connection (not one of the pool's); on PGlite the
// in-process instance delivers its own notifications. Lost notifications are fine: the worker
// also polls (WORKER_POLL_SECONDS). A lost LISTEN connection is made again with backoff, and
// the worker is woken once it is back, for anything queued while nobody listened.
import type pg from "pg";
import type { DatabaseHandle } from "../src/db/client.js";
import { backoffDelay } from "../src/db/retry-transient.js";
import { JOBS_CHANNEL } from "../src/fine-tuning/job-repository.js";

/** Calls onWake on every notification; resolves to a function that stops listening. */
export async function listenForJobs(
  database: DatabaseHandle,
  onWake: () => void,
  log: (message: string) => void = () => {},
): Promise<() => Promise<void>> {
  const client = (database.db as unknown as { $client: unknown }).$client;
  if (database.kind === "pglite") {
    const pglite = client as { listen(channel: string, cb: (payload: string) => void): Promise<() => Promise<void>> };
    const unlisten = await pglite.listen(JOBS_CHANNEL, () => onWake());
    return async () => {
      await unlisten().catch(() => {});
    };
  }
  const pool = client as pg.Pool;
  const { default: pgModule } = await import("pg");
  let listener: pg.Client | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | null = null;
  let failures = 0;
  let connectedBefore = false;
  const reconnectLater = () => {
    if (stopped || retry) return;
    failures += 1;
    const delay = backoffDelay(failures, 500, 30_000);
    retry = setTimeout(() => {
      retry = null;
      void connect();
    }, delay);
    retry.unref();
  };
  const connect = async (): Promise<void> => {
    const c = new pgModule.Client(pool.options);
    c.on("notification", () => onWake());
    // Without a listener, node-postgres' 'error' on a lost connection would crash the process.
    c.on("error", (err) => {
      if (listener === c) {
        listener = null;
        log(`LISTEN connection lost (${err.message}); polling until it is back`);
      }
      c.end().catch(() => {});
      reconnectLater();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${JOBS_CHANNEL}`);
    } catch (err) {
      c.end().catch(() => {});
      if (failures === 0) log(`LISTEN connection failed (${(err as Error).message}); retrying with backoff`);
      reconnectLater();
      return;
    }
    if (stopped) {
      await c.end().catch(() => {});
      return;
    }
    const again = connectedBefore || failures > 0;
    if (again) log("LISTEN connection is back");
    failures = 0;
    connectedBefore = true;
    listener = c;
    // a job may have been queued while nobody listened
    if (again) onWake();
  };
  await connect();
  return async () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    await listener?.end().catch(() => {});
  };
}
