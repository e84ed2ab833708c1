// The blob store (ordered bytea chunks) and the sweeper, on every test database.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { eq, sql } from "drizzle-orm";
import { ensureProject } from "../../../src/store/auth/api-keys.js";
import {
  appendBlobs,
  BLOB_CHUNK_BYTES,
  markBlobReady,
  readBlob,
  startBlob,
} from "../../../src/store/blobs/blob-store.js";
import { blobs, files } from "../../../src/store/db/schema.js";
import { sweepOnce } from "../../../src/store/maintenance.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";

async function readAll(db: TestDatabase, blobId: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of readBlob(db.handle, blobId)) parts.push(chunk);
  return Buffer.concat(parts);
}

async function chunkSizes(db: TestDatabase, blobId: string): Promise<number[]> {
  const result = (await db.handle.db.execute(
    sql`SELECT length(data)::int AS n FROM blob_chunks WHERE blob_id = ${blobId} ORDER BY seq`,
  )) as unknown as { rows: { n: number }[] };
  return result.rows.map((r) => r.n);
}

for (const target of testDatabases()) {
  describe(`blob store and sweeper [${target.name}]`, () => {
    let db: TestDatabase;
    let projectId: string;
    before(async () => {
      db = await target.open();
      projectId = (await ensureProject(db.handle.db, "storage")).id;
    });
    after(() => db.dispose());

    it("stores odd-sized writes as full 1 MiB chunks plus a tail, and reads them back in order", async () => {
      const data = randomBytes(2 * BLOB_CHUNK_BYTES + 12345);
      const writer = await startBlob(db.handle, projectId);
      for (let offset = 0; offset < data.length; offset += 70_001) {
        await writer.write(data.subarray(offset, Math.min(offset + 70_001, data.length)));
      }
      assert.equal(await writer.finish(), data.length);
      assert.deepEqual(await chunkSizes(db, writer.blobId), [BLOB_CHUNK_BYTES, BLOB_CHUNK_BYTES, 12345]);
      assert.ok((await readAll(db, writer.blobId)).equals(data));
    });

    it("appendBlobs concatenates in the given order and removes the sources", async () => {
      const pieces = [randomBytes(1000), randomBytes(BLOB_CHUNK_BYTES + 1), randomBytes(7)];
      const ids: string[] = [];
      for (const piece of pieces) {
        const w = await startBlob(db.handle, projectId);
        await w.write(piece);
        await w.finish();
        ids.push(w.blobId);
      }
      const target = await startBlob(db.handle, projectId);
      await target.finish();
      await db.handle.db.transaction(async (tx) => {
        await appendBlobs(tx, target.blobId, [ids[2], ids[0], ids[1]]);
        await markBlobReady(tx, target.blobId);
      });
      const expected = Buffer.concat([pieces[2], pieces[0], pieces[1]]);
      assert.ok((await readAll(db, target.blobId)).equals(expected));
      const [row] = await db.handle.db.select().from(blobs).where(eq(blobs.id, target.blobId));
      assert.equal(row.bytes, expected.length);
      assert.equal(row.state, "ready");
      const left = await db.handle.db
        .select()
        .from(blobs)
        .where(sql`${blobs.id} IN (${ids[0]}, ${ids[1]}, ${ids[2]})`);
      assert.equal(left.length, 0);
    });

    it("abort removes a blob and its chunks", async () => {
      const w = await startBlob(db.handle, projectId);
      await w.write(randomBytes(BLOB_CHUNK_BYTES + 10));
      await w.abort();
      assert.deepEqual(await chunkSizes(db, w.blobId), []);
      assert.equal((await db.handle.db.select().from(blobs).where(eq(blobs.id, w.blobId))).length, 0);
    });

    it("the sweeper deletes abandoned writing blobs and expired files, and keeps the rest", async () => {
      const abandoned = await startBlob(db.handle, projectId);
      await abandoned.write(randomBytes(100));
      await abandoned.finish();
      const fresh = await startBlob(db.handle, projectId);
      await fresh.finish();
      await db.handle.db
        .update(blobs)
        .set({ touchedAt: new Date(Date.now() - 60 * 60 * 1000) })
        .where(eq(blobs.id, abandoned.blobId));

      const expiredBlob = await startBlob(db.handle, projectId);
      await expiredBlob.write(Buffer.from("old"));
      await expiredBlob.finish();
      await markBlobReady(db.handle.db, expiredBlob.blobId);
      await db.handle.db.insert(files).values({
        id: "file-expiredfortest0000000000",
        projectId,
        blobId: expiredBlob.blobId,
        filename: "old.txt",
        purpose: "batch",
        bytes: 3,
        status: "processed",
        expiresAt: new Date(Date.now() - 1000),
      });

      const swept = await sweepOnce(db.handle.db);
      assert.equal(swept.blobs, 1);
      assert.equal(swept.files, 1);
      const remaining = new Set((await db.handle.db.select({ id: blobs.id }).from(blobs)).map((r) => r.id));
      assert.ok(!remaining.has(abandoned.blobId));
      assert.ok(!remaining.has(expiredBlob.blobId));
      assert.ok(remaining.has(fresh.blobId));
    });
  });
}
