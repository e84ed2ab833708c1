// LISTEN on a notification channel, to wake a poller at once instead of at its next poll.
// On a Postgres server this is a dedicated connection (not one of the pool's); on PGlite the
// in-process instance delivers its own notifications. Lost notifications are fine: callers
// also poll. A lost LISTEN connection is made again with backoff, and the caller is woken once
// it is back, for anything written while nobody listened.
import type pg from "pg";
import type { DatabaseHandle } from "./client.js";
import { backoffDelay } from "./retry-transient.js";

/** Calls onWake on every notification on `channel`; resolves to a function that stops listening. */
export async function listenOnChannel(
  database: DatabaseHandle,
  channel: string,
  onWake: () => void,
  log: (message: string) => void = () => {},
): Promise<() => Promise<void>> {
  const client = (database.db as unknown as { $client: unknown }).$client;
  if (database.kind === "pglite") {
    const pglite = client as {
      listen(channel: string, cb: (payload: string) => void): Promise<() => Promise<void>>;
    };
    const unlisten = await pglite.listen(channel, () => onWake());
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
      await c.query(`LISTEN ${channel}`);
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
    // something may have been written while nobody listened
    if (again) onWake();
  };
  await connect();
  return async () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    await listener?.end().catch(() => {});
  };
}
