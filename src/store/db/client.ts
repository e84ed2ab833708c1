// One database handle for the whole process, on either driver: node-postgres against a
// Postgres server (DATABASE_URL), or PGlite (Postgres compiled to WebAssembly) in a data
// folder or in memory. Both run the same SQL migrations from migrations/ at open.
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { PGlite } from "@electric-sql/pglite";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import * as schema from "./schema.js";

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface DatabaseHandle {
  db: Database;
  kind: "postgres" | "pglite";
  /** for logs: the server URL without password, or the PGlite folder */
  description: string;
  /** the PGlite instance, for tests that snapshot it (pglite only) */
  pglite?: PGlite;
  close(): Promise<void>;
}

export type DatabaseLocation =
  | { kind: "postgres"; url: string; poolSize?: number }
  /** dataDir null = in memory (tests); loadDataDir = start from a PGlite dumpDataDir() snapshot */
  | { kind: "pglite"; dataDir: string | null; loadDataDir?: Blob };

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../../migrations", import.meta.url));

// Any constant works; it only has to be the same in every api/worker process.
const MIGRATION_LOCK_KEY = 727_416_031;

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "postgres://…";
  }
}

export async function openDatabase(location: DatabaseLocation): Promise<DatabaseHandle> {
  if (location.kind === "postgres") return openPostgres(location.url, location.poolSize ?? 10);
  return openPglite(location.dataDir, location.loadDataDir);
}

async function openPostgres(url: string, poolSize: number): Promise<DatabaseHandle> {
  const pg = await import("pg");
  const { drizzle } = await import("drizzle-orm/node-postgres");
  const { migrate } = await import("drizzle-orm/node-postgres/migrator");
  // A connection attempt to an unreachable server gives up after 10 s (the default waits forever).
  const pool = new pg.default.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 10_000 });
  // A client that loses its server must not crash the process. The pool handles idle clients
  // (it drops them); a checked-out one (inside a transaction) has no listener of its own, and
  // node-postgres emits 'error' on it besides failing its query. The pool drops it on release.
  pool.on("error", () => {});
  pool.on("connect", (client) => {
    client.on("error", () => {});
  });
  returnLostClients(pool);
  try {
    const lockClient = await pool.connect();
    try {
      // Several api/worker processes may start at once: one migrates, the others wait.
      await lockClient.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
      try {
        await migrate(drizzle({ client: lockClient }), { migrationsFolder: MIGRATIONS_DIR });
      } finally {
        await lockClient.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
      }
    } finally {
      lockClient.release();
    }
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  const db = drizzle({ client: pool, schema }) as unknown as Database;
  return { db, kind: "postgres", description: redactUrl(url), close: () => pool.end() };
}

async function openPglite(dataDir: string | null, loadDataDir?: Blob): Promise<DatabaseHandle> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  const { migrate } = await import("drizzle-orm/pglite/migrator");
  if (dataDir !== null) mkdirSync(dataDir, { recursive: true });
  const client = await PGlite.create({
    ...(dataDir === null ? {} : { dataDir }),
    ...(loadDataDir ? { loadDataDir } : {}),
  });
  const pdb = drizzle({ client, schema });
  await migrate(pdb, { migrationsFolder: MIGRATIONS_DIR });
  return {
    db: pdb as unknown as Database,
    kind: "pglite",
    description: dataDir === null ? "PGlite (in memory)" : `PGlite in ${dataDir}`,
    pglite: client,
    close: () => client.close(),
  };
}

/**
 * Gives a checked-out client back to the pool as soon as its connection is lost, and makes its
 * release() idempotent. drizzle's transaction() runs BEGIN before its try/finally, so a BEGIN
 * that fails on a dead connection never releases the client: without this, each such failure
 * would take one pool slot for good, and a few database restarts would leave none.
 */
function returnLostClients(pool: import("pg").Pool): void {
  const connect = pool.connect.bind(pool) as () => Promise<import("pg").PoolClient>;
  (pool as { connect: unknown }).connect = (callback?: unknown) => {
    if (callback !== undefined)
      return (pool.constructor as typeof import("pg").Pool).prototype.connect.call(pool, callback as never);
    return connect().then((client) => {
      const release = client.release.bind(client);
      let released = false;
      const onLost = (err: Error) => client.release(err);
      client.release = (err?: Error | boolean) => {
        if (released) return;
        released = true;
        client.removeListener("error", onLost);
        release(err);
      };
      client.on("error", onLost);
      return client;
    });
  };
}
