// Files in the database: the row ↔ OpenAI's File object, and every query scoped to a project
// (another project's file is indistinguishable from a missing one). Expired files are treated
// as gone at once and deleted by the sweeper.
import { and, asc, desc, eq, gt, isNull, lt, lte, or, type SQL, sql } from "drizzle-orm";
import type { components } from "../../contract/openapi-types.js";
import type { Queryable } from "../blobs/blob-store.js";
import type { Database } from "../db/client.js";
import { blobs, files } from "../db/schema.js";
import { invalidRequest } from "../domain-error.js";
import { newId } from "../ids.js";
import { unixSeconds } from "../unix-seconds.js";

export type FileRow = typeof files.$inferSelect;
export type FileObject = components["schemas"]["OpenAIFile"];

export function toFileObject(row: FileRow): FileObject {
  const object: FileObject = {
    id: row.id,
    object: "file",
    bytes: row.bytes,
    created_at: unixSeconds(row.createdAt),
    filename: row.filename,
    purpose: row.purpose as FileObject["purpose"],
    status: row.status as FileObject["status"],
  };
  if (row.expiresAt) object.expires_at = unixSeconds(row.expiresAt);
  if (row.statusDetails) object.status_details = row.statusDetails;
  if (row.validation) {
    // jsonb stores keys in its own order; answer in the documented one
    const v = row.validation as NonNullable<FileObject["validation"]>;
    object.validation = {
      format: v.format,
      examples: v.examples,
      valid_examples: v.valid_examples,
      invalid_examples: v.invalid_examples,
      errors: v.errors,
    };
  }
  return object;
}

export interface NewFile {
  projectId: string;
  /** the bytes, already written; the caller marks the blob ready in the same transaction */
  blobId: string;
  filename: string;
  purpose: string;
  bytes: number;
  /** fine-tune files: the upload's JsonlSummary */
  validation?: unknown;
  /** seconds from now until the file expires; null or absent: never */
  expiresInSeconds?: number | null;
  /** given by a writer that may retry (the worker's result file); else a new file-… id */
  id?: string;
}

/** The one place a `files` row is written (uploads, multipart uploads, job results). */
export async function insertFile(q: Queryable, file: NewFile): Promise<FileRow> {
  const now = new Date();
  const expiresIn = file.expiresInSeconds ?? null;
  const [row] = await q
    .insert(files)
    .values({
      id: file.id ?? newId("file-"),
      projectId: file.projectId,
      blobId: file.blobId,
      filename: file.filename,
      purpose: file.purpose,
      bytes: file.bytes,
      status: "processed",
      validation: file.validation ?? null,
      createdAt: now,
      expiresAt: expiresIn === null ? null : new Date(now.getTime() + expiresIn * 1000),
    })
    .returning();
  return row;
}

const notExpired = (): SQL => or(isNull(files.expiresAt), gt(files.expiresAt, sql`now()`))!;

export async function findFile(db: Queryable, projectId: string, id: string): Promise<FileRow | null> {
  const [row] = await db
    .select()
    .from(files)
    .where(and(eq(files.id, id), eq(files.projectId, projectId), notExpired()));
  return row ?? null;
}

export interface FileListQuery {
  purpose?: string;
  limit: number;
  after?: string;
  order: "asc" | "desc";
}

/** Returns up to limit + 1 rows (the extra one says has_more). */
export async function listFiles(db: Database, projectId: string, q: FileListQuery): Promise<FileRow[]> {
  const conditions: SQL[] = [eq(files.projectId, projectId), notExpired()];
  if (q.purpose !== undefined) conditions.push(eq(files.purpose, q.purpose));
  if (q.after !== undefined) {
    const cursor = await findFile(db, projectId, q.after);
    if (!cursor) throw invalidRequest(`No such File object: ${q.after} (the 'after' cursor)`, "after");
    const before = q.order === "desc" ? lt : gt;
    conditions.push(
      or(
        before(files.createdAt, cursor.createdAt),
        and(eq(files.createdAt, cursor.createdAt), before(files.id, cursor.id)),
      )!,
    );
  }
  const direction = q.order === "desc" ? desc : asc;
  return db
    .select()
    .from(files)
    .where(and(...conditions))
    .orderBy(direction(files.createdAt), direction(files.id))
    .limit(q.limit + 1);
}

/** Deletes the file row and its bytes in one transaction; false when there is no such file. */
export async function deleteFile(db: Database, projectId: string, id: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [gone] = await tx
      .delete(files)
      .where(and(eq(files.id, id), eq(files.projectId, projectId), notExpired()))
      .returning({ blobId: files.blobId });
    if (!gone) return false;
    await tx.delete(blobs).where(eq(blobs.id, gone.blobId));
    return true;
  });
}

export async function sweepExpiredFiles(db: Database): Promise<number> {
  return db.transaction(async (tx) => {
    const gone = await tx
      .delete(files)
      .where(lte(files.expiresAt, sql`now()`))
      .returning({ blobId: files.blobId });
    for (const { blobId } of gone) await tx.delete(blobs).where(eq(blobs.id, blobId));
    return gone.length;
  });
}
