// The database handle on a Postgres server outlives lost connections: terminated backends
// (idle, inside a transaction, or at its BEGIN) neither crash the process nor use up the pool,
// and the errors they cause are recognised as transient.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { type DatabaseHandle, openDatabase } from "../../../src/store/db/client.js";
import { isTransientDatabaseError } from "../../../src/store/db/transient-error.js";
import { type ScratchDatabase, scratchDatabase, terminateBackends } from "../../support/service-processes.js";

const serverUrl = process.env.TEST_DATABASE_URL;

function terminateBackendsBlocking(db: ScratchDatabase): void {
  const script = `const pg = require("pg"); const c = new pg.Client(${JSON.stringify(db.serverUrl)});
    c.connect().then(() => c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [${JSON.stringify(db.name)}])).then(() => c.end());`;
  const run = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
}

describe("isTransientDatabaseError", () => {
  it("knows lost connections from the statement's own errors, through drizzle's wrapper", () => {
    const wrap = (cause: unknown) => Object.assign(new Error("Failed query: select 1"), { cause });
    for (const e of [
      new Error("Connection terminated unexpectedly"),
      Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" }),
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }),
      Object.assign(new Error("connection failure"), { code: "08006" }),
      new Error("Client has encountered a connection error and is not queryable"),
      new Error("timeout exceeded when trying to connect"),
    ]) {
      assert.equal(isTransientDatabaseError(e), true, e.message);
      assert.equal(isTransientDatabaseError(wrap(e)), true, `wrapped: ${e.message}`);
    }
    for (const e of [
      Object.assign(new Error("duplicate key value violates unique constraint"), { code: "23505" }),
      Object.assign(new Error('syntax error at or near "x"'), { code: "42601" }),
      new Error("Training diverged"),
      "Connection terminated",
      null,
    ]) {
      assert.equal(isTransientDatabaseError(e), false, String(e));
      assert.equal(isTransientDatabaseError(wrap(e)), false, `wrapped: ${String(e)}`);
    }
  });
});

describe("database handle under terminated connections [postgres]", {
  skip: serverUrl ? false : "TEST_DATABASE_URL not set",
}, () => {
  let db: ScratchDatabase;
  let handle: DatabaseHandle;
  before(async () => {
    db = await scratchDatabase(serverUrl!, "th_connloss");
    handle = await openDatabase({ kind: "postgres", url: db.url, poolSize: 2 });
  });
  after(async () => {
    await handle?.close();
    await db?.drop();
  });

  it("transactions hit by terminations fail as transient, and the pool keeps serving", async () => {
    let transient = 0;
    for (let round = 0; round < 12; round++) {
      // both pool clients busy in transactions, or just starting one, when the backends die
      const work = [0, 1, 2].map((i) =>
        handle.db
          .transaction(async (tx) => {
            await tx.execute(sql`SELECT pg_sleep(${0.05 * i})`);
            await tx.execute(sql`SELECT 1`);
          })
          .then(
            () => "ok",
            (err) => {
              assert.ok(isTransientDatabaseError(err), `not transient: ${(err as Error).message}`);
              transient++;
              return "lost";
            },
          ),
      );
      await sleep(round * 7);
      await terminateBackends(db);
      await Promise.all(work);
    }
    // idle clients whose backends just died, taken for a BEGIN before the pool noticed
    for (let round = 0; round < 6; round++) {
      await Promise.all(
        [0, 1].map(() => handle.db.transaction((tx) => tx.execute(sql`SELECT pg_sleep(0.02)`))),
      );
      // terminated while this process's event loop is blocked: the pool learns of it only when
      // the BEGIN it sends on the dead connections fails
      terminateBackendsBlocking(db);
      await Promise.all(
        [0, 1].map(() =>
          handle.db
            .transaction((tx) => tx.execute(sql`SELECT 1`))
            .catch((err) => {
              assert.ok(isTransientDatabaseError(err), `not transient: ${(err as Error).message}`);
              transient++;
            }),
        ),
      );
    }
    assert.ok(transient > 0, "some transactions were cut");
    // every slot is usable again: two transactions at once, each holding its client
    const started = Date.now();
    await Promise.all([0, 1].map(() => handle.db.transaction((tx) => tx.execute(sql`SELECT pg_sleep(0.1)`))));
    assert.ok(Date.now() - started < 5_000, "the pool has its clients back");
  });
});
