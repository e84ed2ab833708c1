// LISTEN for new webhook events, so a dispatcher sends at once instead of at its next poll.
// On a Postgres server: a dedicated connection (reconnected after a loss; the poll covers the
// gap); on PGlite the in-process instance delivers its own notifications.
import type pg from "pg";
import type { DatabaseHandle } from "../db/client.js";
import { WEBHOOKS_CHANNEL } from "./webhook-outbox.js";

export async function listenForWebhookEvents(
  database: DatabaseHandle,
  onWake: () => void,
  log: (message: string) => void,
): Promise<() => Promise<void>> {
  const client = (database.db as unknown as { $client: unknown }).$client;
  if (database.kind === "pglite") {
    const pglite = client as {
      listen(channel: string, cb: (payload: string) => void): Promise<() => Promise<void>>;
    };
    const unlisten = await pglite.listen(WEBHOOKS_CHANNEL, () => onWake());
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
      log(`webhooks: LISTEN connection lost (${err.message}); polling until it is back`);
      c.end().catch(() => {});
      if (listener === c) listener = null;
      if (!stopped) retry = setTimeout(() => void connect().catch(() => {}), 5000);
    });
    await c.connect();
    await c.query(`LISTEN ${WEBHOOKS_CHANNEL}`);
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
