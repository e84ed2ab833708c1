// Byte storage in Postgres: a blob is an ordered run of ~1 MiB `bytea` chunks. Callers stream
// bytes in through a BlobWriter (memory: one chunk being filled plus at most three being
// inserted, whatever the size; the chunk buffers are reused, so a long upload makes no
// garbage of its own) and read them back as an async iterable of chunks. An object store
// could replace this module without touching callers.
//
// Why not one long transaction per upload: PGlite has a single connection, so a transaction
// held for a whole (possibly slow) upload would stall every other query of the process, and
// on a server it would pin a pool connection per uploader. Instead chunks are written in
// autocommit under a blob in state `writing`, and the owner (a file row, …) flips it to
// `ready` in the same short transaction that makes the owner visible. A failed or aborted
// write deletes its blob at once; a crashed process leaves `writing` blobs that nobody
// touches any more, and sweepAbandonedBlobs() deletes those.
import { and, asc, eq, gte, inArray, lt, sql } from "drizzle-orm";
import type { Database, DatabaseHandle } from "../db/client.js";
import { blobChunks, blobs } from "../db/schema.js";
import { newId } from "../ids.js";

export const BLOB_CHUNK_BYTES = 1024 * 1024;
/** chunk inserts overlapping the network read (each on its own pool connection with pg) */
const MAX_INSERTS_IN_FLIGHT = 3;
const CHUNKS_PER_READ = 4;
/** a `writing` blob untouched this long belongs to a dead writer */
export const ABANDONED_BLOB_MS = 15 * 60 * 1000;

/** Anything that runs drizzle queries: the database or a transaction in it. */
export type Queryable = Pick<Database, "select" | "insert" | "update" | "delete" | "execute">;

export interface BlobWriter {
  readonly blobId: string;
  /** bytes accepted so far */
  readonly bytes: number;
  /** Copies the bytes; resolves when the writer can take more (backpressure). */
  write(bytes: Uint8Array): Promise<void>;
  /** Stores what is buffered and waits for every insert; the blob stays `writing` until markBlobReady. */
  finish(): Promise<number>;
  /** Deletes everything written; safe to call more than once and after finish(). */
  abort(): Promise<void>;
}

/** What blob I/O needs: the database and which driver it is (bytea travels differently). */
export type BlobDatabase = Pick<DatabaseHandle, "db" | "kind">;

// PGlite's bytea parameter and result conversion runs a JS loop per byte (~1 s per MiB);
// base64 text through decode()/encode() runs in C and is ~20× faster. node-postgres sends a
// Buffer parameter in binary and parses hex results natively, so it needs no detour.
function chunkValue(kind: DatabaseHandle["kind"], data: Buffer) {
  return kind === "pglite" ? sql`decode(${data.toString("base64")}, 'base64')` : sql`${data}`;
}

export async function startBlob(handle: BlobDatabase, projectId: string): Promise<BlobWriter> {
  const { db, kind } = handle;
  const blobId = newId("blob_");
  await db.insert(blobs).values({ id: blobId, projectId, state: "writing" });

  // Buffers whose insert has settled, ready to be filled again. Reusing them matters for
  // memory: V8 frees a dropped Buffer's bytes only at its next GC, and an upload would
  // otherwise drop a megabyte per chunk faster than small-heap GCs come round.
  const spare: Buffer[] = [];
  let buffer: Buffer = Buffer.allocUnsafe(BLOB_CHUNK_BYTES);
  let filled = 0;
  let seq = 0;
  let bytes = 0;
  let failure: unknown = null;
  let aborted = false;
  const inFlight = new Set<Promise<void>>();

  const insertChunk = (chunkSeq: number, chunk: Buffer, data: Buffer): Promise<void> => {
    // One statement, one round trip: the chunk, and the blob's touched_at (so the sweeper
    // leaves it alone). On a server, chunks commit asynchronously (no WAL flush each; the
    // set_config is local to the statement's own transaction): durability comes from the
    // publishing transaction, a normal synchronous commit, which flushes the WAL up to itself
    // and so every chunk written before it. A crash before that loses only an unpublished
    // upload. (PGlite has one connection and no real WAL flush: a plain statement is cheaper.)
    const insert =
      kind === "postgres"
        ? sql`WITH touched AS (UPDATE ${blobs} SET touched_at = now() WHERE ${blobs.id} = ${blobId})
      INSERT INTO ${blobChunks} (blob_id, seq, data)
      SELECT ${blobId}::text, ${chunkSeq}::integer, ${data}::bytea FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit`
        : sql`WITH touched AS (UPDATE ${blobs} SET touched_at = now() WHERE ${blobs.id} = ${blobId})
      INSERT INTO ${blobChunks} (blob_id, seq, data) VALUES (${blobId}, ${chunkSeq}, ${chunkValue(kind, data)})`;
    const p = db
      .execute(insert)
      .then(
        () => {
          spare.push(chunk);
        },
        (err: unknown) => {
          failure ??= err;
        },
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    return p;
  };

  const flush = async (): Promise<void> => {
    if (filled === 0) return;
    const chunk = buffer;
    insertChunk(seq++, chunk, chunk.subarray(0, filled));
    buffer = spare.pop() ?? Buffer.allocUnsafe(BLOB_CHUNK_BYTES);
    filled = 0;
    while (inFlight.size >= MAX_INSERTS_IN_FLIGHT) await Promise.race(inFlight);
    if (failure) throw failure;
  };

  return {
    blobId,
    get bytes() {
      return bytes;
    },
    async write(input: Uint8Array) {
      if (aborted) throw new Error(`blob ${blobId}: write after abort`);
      if (failure) throw failure;
      let offset = 0;
      while (offset < input.length) {
        const n = Math.min(input.length - offset, BLOB_CHUNK_BYTES - filled);
        buffer.set(input.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        if (filled === BLOB_CHUNK_BYTES) await flush();
      }
      bytes += input.length;
    },
    async finish() {
      await flush();
      await Promise.all(inFlight);
      if (failure) throw failure;
      await db.update(blobs).set({ bytes, touchedAt: new Date() }).where(eq(blobs.id, blobId));
      return bytes;
    },
    async abort() {
      aborted = true;
      await Promise.allSettled(inFlight);
      await db.delete(blobs).where(eq(blobs.id, blobId));
    },
  };
}

/** Called in the transaction that publishes the blob's owner. */
export async function markBlobReady(q: Queryable, blobId: string): Promise<void> {
  await q.update(blobs).set({ state: "ready" }).where(eq(blobs.id, blobId));
}

export async function deleteBlob(q: Queryable, blobId: string): Promise<void> {
  await q.delete(blobs).where(eq(blobs.id, blobId));
}

/** The blob's bytes in order, a few chunks per query, so memory stays flat for any size. */
export async function* readBlob(handle: BlobDatabase, blobId: string): AsyncGenerator<Uint8Array> {
  const { db, kind } = handle;
  let nextSeq = 0;
  for (;;) {
    if (kind === "pglite") {
      const rows = await db
        .select({ seq: blobChunks.seq, data: sql<string>`encode(${blobChunks.data}, 'base64')` })
        .from(blobChunks)
        .where(and(eq(blobChunks.blobId, blobId), gte(blobChunks.seq, nextSeq)))
        .orderBy(asc(blobChunks.seq))
        .limit(CHUNKS_PER_READ);
      for (const row of rows) yield Buffer.from(row.data, "base64");
      if (rows.length < CHUNKS_PER_READ) return;
      nextSeq = rows[rows.length - 1].seq + 1;
      continue;
    }
    const rows = await db
      .select({ seq: blobChunks.seq, data: blobChunks.data })
      .from(blobChunks)
      .where(and(eq(blobChunks.blobId, blobId), gte(blobChunks.seq, nextSeq)))
      .orderBy(asc(blobChunks.seq))
      .limit(CHUNKS_PER_READ);
    for (const row of rows) yield row.data;
    if (rows.length < CHUNKS_PER_READ) return;
    nextSeq = rows[rows.length - 1].seq + 1;
  }
}

/**
 * Moves the chunks of `sources` (in that order) behind those already in `target`, without
 * copying their bytes (an UPDATE that leaves an out-of-line value alone keeps pointing at
 * it), then deletes the emptied source blobs. Run it inside the publishing transaction.
 */
export async function appendBlobs(q: Queryable, target: string, sources: string[]): Promise<void> {
  if (sources.length === 0) return;
  const counts = await q
    .select({
      blobId: blobChunks.blobId,
      n: sql<number>`count(*)::int`,
      last: sql<number>`max(${blobChunks.seq})`,
    })
    .from(blobChunks)
    .where(inArray(blobChunks.blobId, [target, ...sources]))
    .groupBy(blobChunks.blobId);
  const byBlob = new Map(counts.map((c) => [c.blobId, c]));
  let offset = (byBlob.get(target)?.last ?? -1) + 1;
  for (const source of sources) {
    const info = byBlob.get(source);
    if (info) {
      await q
        .update(blobChunks)
        .set({ blobId: target, seq: sql`${blobChunks.seq} + ${offset}` })
        .where(eq(blobChunks.blobId, source));
      offset += info.last + 1;
    }
  }
  const total = await q
    .select({ bytes: sql<number>`coalesce(sum(${blobs.bytes}), 0)::bigint` })
    .from(blobs)
    .where(inArray(blobs.id, [target, ...sources]));
  await q
    .update(blobs)
    .set({ bytes: Number(total[0].bytes), touchedAt: new Date() })
    .where(eq(blobs.id, target));
  await q.delete(blobs).where(inArray(blobs.id, sources));
}

export async function sweepAbandonedBlobs(db: Database, olderThanMs = ABANDONED_BLOB_MS): Promise<number> {
  const cutoff = new Date(Date.now() - olderThanMs);
  const gone = await db
    .delete(blobs)
    .where(and(eq(blobs.state, "writing"), lt(blobs.touchedAt, cutoff)))
    .returning({ id: blobs.id });
  return gone.length;
}
