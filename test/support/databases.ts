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
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { type DatabaseHandle, MIGRATIONS_DIR, openDatabase } from "../../src/store/db/client.js";

// A fresh PGlite runs initdb in WebAssembly (several seconds, far more on a busy machine), so
// the first suite saves a migrated snapshot and later ones start from it. The snapshot's name
// hashes the migrations and the PGlite version: a schema change makes a new one.
const SNAPSHOT_DIR = fileURLToPath(new URL("../../.test-data/pglite-snapshots", import.meta.url));

function snapshotPath(): string {
  const hash = createHash("sha256");
  const pgliteVersion = JSON.parse(
    readFileSync(
      fileURLToPath(new URL("../../node_modules/@electric-sql/pglite/package.json", import.meta.url)),
      "utf8",
    ),
  ).version;
  hash.update(String(pgliteVersion));
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (name.endsWith(".sql") || name.endsWith(".json")) hash.update(name).update(readFileSync(path));
      else if (!name.includes(".")) walk(path);
    }
  };
  walk(MIGRATIONS_DIR);
  return join(SNAPSHOT_DIR, `migrated-${hash.digest("hex").slice(0, 16)}.tar`);
}

async function openPgliteFromSnapshot(): Promise<DatabaseHandle> {
  const path = snapshotPath();
  if (existsSync(path)) {
    return openDatabase({ kind: "pglite", dataDir: null, loadDataDir: new Blob([readFileSync(path)]) });
  }
  const handle = await openDatabase({ kind: "pglite", dataDir: null });
  const dump = await handle.pglite!.dumpDataDir("none");
  mkdirSync(SNAPSHOT_DIR, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
  renameSync(tmp, path); // atomic: a parallel run never reads half a snapshot
  for (const old of readdirSync(SNAPSHOT_DIR)) {
    if (old.startsWith("migrated-") && old.endsWith(".tar") && join(SNAPSHOT_DIR, old) !== path) {
      rmSync(join(SNAPSHOT_DIR, old), { force: true });
    }
  }
  return handle;
}

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
        const handle = await openPgliteFromSnapshot();
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
        const handle = await openDatabase({
          kind: "postgres",
          url: withDatabase(serverUrl, name),
          poolSize: 8,
        });
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
