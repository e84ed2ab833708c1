// Test databases: every suite runs on PGlite (in memory), and also on a Postgres server when
// TEST_DATABASE_URL is set (e.g. postgres://postgres@127.0.0.1:5432/tunehouse_test). On the
// server each suite gets a database of its own, created fresh and dropped afterwards, so runs
// never see each other's rows.
//
//   for (const target of testDatabases()) {
//     describe(`files API [${target.name}]`, () => {
//       let db: TestDatabase;
//       before(async () => { db = await target.open(); });
//       after(() => db.dispose());
//       …
//     });
//   }
import { randomBytes } from "node:crypto";
import pg from "pg";
import { type DatabaseHandle, openDatabase } from "../../src/db/client.js";

export interface TestDatabase {
  handle: DatabaseHandle;
  /** closes the handle and drops the per-suite database (Postgres) */
  dispose(): Promise<void>;
}

export interface TestDatabaseTarget {
  name: "pglite" | "postgres";
  open(): Promise<TestDatabase>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function adminQuery(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

export function testDatabases(): TestDatabaseTarget[] {
  const targets: TestDatabaseTarget[] = [
    {
      name: "pglite",
      async open() {
        const handle = await openDatabase({ kind: "pglite", dataDir: null });
        return { handle, dispose: () => handle.close() };
      },
    },
  ];
  const serverUrl = process.env.TEST_DATABASE_URL;
  if (serverUrl) {
    targets.push({
      name: "postgres",
      async open() {
        const name = `th_test_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
        await adminQuery(serverUrl, `CREATE DATABASE ${name}`);
        const handle = await openDatabase({ kind: "postgres", url: withDatabase(serverUrl, name), poolSize: 8 });
        return {
          handle,
          async dispose() {
            await handle.close();
            await adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
          },
        };
      },
    });
  }
  return targets;
}
