// The BlobWriter past its first few chunks: chunk buffers are reused once their insert has
// settled, so a long write must still store every byte in order (a buffer refilled too early
// would show up as a chunk holding a later chunk's bytes; on PGlite the bytes are encoded
// before the insert starts, so the Postgres run is the one that can catch it).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { sql } from "drizzle-orm";
import { ensureProject } from "../../../src/store/auth/api-keys.js";
import { BLOB_CHUNK_BYTES, readBlob, startBlob } from "../../../src/store/blobs/blob-store.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

for (const target of testDatabases()) {
  describe(`blob writer over many chunks [${target.name}]`, () => {
    let db: TestDatabase;
    let projectId: string;
    before(async () => {
      db = await target.open();
      projectId = (await ensureProject(db.handle.db, "blob-writer")).id;
    });
    after(() => db.dispose());

    it("stores 9 full chunks and a tail, written in odd-sized pieces, byte for byte in order", async () => {
      const data = randomBytes(9 * BLOB_CHUNK_BYTES + 4321);
      const writer = await startBlob(db.handle, projectId);
      for (let offset = 0; offset < data.length; ) {
        const n = Math.min(data.length - offset, 300_001); // straddles chunk boundaries
        await writer.write(data.subarray(offset, offset + n));
        offset += n;
      }
      assert.equal(await writer.finish(), data.length);

      const result = (await db.handle.db.execute(
        sql`SELECT seq, length(data)::int AS n, encode(sha256(data), 'hex') AS hash
            FROM blob_chunks WHERE blob_id = ${writer.blobId} ORDER BY seq`,
      )) as unknown as { rows: { seq: number; n: number; hash: string }[] };
      assert.equal(result.rows.length, 10);
      result.rows.forEach((row, i) => {
        const expected = data.subarray(
          i * BLOB_CHUNK_BYTES,
          Math.min((i + 1) * BLOB_CHUNK_BYTES, data.length),
        );
        assert.equal(row.seq, i);
        assert.equal(row.n, expected.length, `chunk ${i} length`);
        assert.equal(row.hash, sha256(expected), `chunk ${i} holds the wrong bytes`);
      });

      const parts: Uint8Array[] = [];
      for await (const chunk of readBlob(db.handle, writer.blobId)) parts.push(chunk);
      assert.equal(sha256(Buffer.concat(parts)), sha256(data));
      await writer.abort();
    });
  });
}
