// LISTEN for new work: the api NOTIFYs `fine_tuning_jobs` (payload: the job id) when a job is
// created, resumed or re-queued, and idle workers wake at once instead of at their next poll.
// On a Postgres server this is a dedicated connection (not one of the pool's); on PGlite the
// in-process instance delivers its own notifications. Lost notifications are fine: the worker
// also polls (WORKER_POLL_SECONDS).
import type pg from "pg";
import type { DatabaseHandle } from "../src/db/client.js";
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
  const connect = async (): Promise<void> => {
    const c = new pgModule.Client(pool.options);
    c.on("notification", () => onWake());
    c.on("error", (err) => {
      log(`LISTEN connection lost (${err.message}); polling until it is back`);
      c.end().catch(() => {});
      if (listener === c) listener = null;
      if (!stopped) retry = setTimeout(() => void connect().catch(() => {}), 5000);
    });
    await c.connect();
    await c.query(`LISTEN ${JOBS_CHANNEL}`);
    listener = c;
    if (stopped) await c.end();
  };
  await connect();
  return async () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    await listener?.end().catch(() => {});
  };
}
