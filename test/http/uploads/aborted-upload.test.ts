// An upload whose connection is cut mid-body leaves no file row and no stored bytes.
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import { chatJsonlOfSize } from "../../support/jsonl.js";
import type { TestApp } from "../../support/test-app.js";
import { startAppStack, stopStack } from "../../support/test-stack.js";

async function counts(app: TestApp): Promise<{ files: number; blobs: number; chunks: number }> {
  const result = (await app.database.db.execute(
    sql`SELECT (SELECT count(*) FROM files)::int AS files, (SELECT count(*) FROM blobs)::int AS blobs,
               (SELECT count(*) FROM blob_chunks)::int AS chunks`,
  )) as unknown as { rows: { files: number; blobs: number; chunks: number }[] };
  return result.rows[0];
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await sleep(50);
  }
}

for (const target of testDatabases()) {
  describe(`aborted upload [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    before(async () => {
      ({ db, app } = await startAppStack(target));
    });
    after(() => stopStack({ app, db }));

    it("cutting the socket mid-body leaves no file row and no chunks", async () => {
      assert.deepEqual(await counts(app), { files: 0, blobs: 0, chunks: 0 });
      const boundary = "cut-here";
      const head = Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.jsonl"\r\n` +
          "Content-Type: application/octet-stream\r\n\r\n",
      );
      const content = chatJsonlOfSize(6 * 1024 * 1024);
      const url = new URL(`${app.baseURL}/files`);
      const req = request({
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        // no Content-Length: chunked, as the SDK streams files
        headers: {
          authorization: `Bearer ${app.apiKey}`,
          "content-type": `multipart/form-data; boundary=${boundary}`,
        },
      });
      const outcome = new Promise<string>((resolve) => {
        req.on("error", (e) => resolve(`error: ${e.message}`));
        req.on("response", (res) => resolve(`response ${res.statusCode}`));
      });
      req.write(head);
      // Send about half the file, then wait until the server has stored some of it.
      const half = Math.floor(content.length / 2);
      for (let offset = 0; offset < half; offset += 64 * 1024)
        req.write(content.subarray(offset, Math.min(offset + 64 * 1024, half)));
      await waitFor(
        "the first stored chunk",
        () => counts(app),
        (c) => c.chunks > 0,
      );
      assert.equal((await counts(app)).files, 0, "no file row while the upload is in flight");
      req.destroy();
      assert.match(await outcome, /^error/);

      const final = await waitFor(
        "the clean-up",
        () => counts(app),
        (c) => c.blobs === 0 && c.chunks === 0,
      );
      assert.deepEqual(final, { files: 0, blobs: 0, chunks: 0 });
      // and the service is fine afterwards
      const list = await app.client.files.list();
      assert.equal(list.data.length, 0);
    });
  });
}
