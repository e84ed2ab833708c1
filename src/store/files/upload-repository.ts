// Uploads and their parts in the database, and the Upload object OpenAI's SDK expects.
import { and, eq, inArray, isNotNull, lt } from "drizzle-orm";
import type { components } from "../../contract/openapi-types.js";
import type { Queryable } from "../blobs/blob-store.js";
import type { Database } from "../db/client.js";
import { blobs, files, uploadParts, uploads } from "../db/schema.js";
import { unixSeconds } from "../unix-seconds.js";
import { type FileObject, toFileObject } from "./file-repository.js";

export type UploadRow = typeof uploads.$inferSelect;
export type UploadPartRow = typeof uploadParts.$inferSelect;
export type UploadObject = components["schemas"]["Upload"];
export type UploadPartObject = components["schemas"]["UploadPart"];

/** OpenAI: an Upload expires an hour after it is created. */
export const UPLOAD_LIFETIME_SECONDS = 3600;

export function effectiveStatus(row: UploadRow, now = new Date()): UploadObject["status"] {
  if (row.status === "pending" && row.expiresAt.getTime() <= now.getTime()) return "expired";
  return row.status as UploadObject["status"];
}

export function toUploadObject(row: UploadRow, file: FileObject | null): UploadObject {
  return {
    id: row.id,
    object: "upload",
    bytes: row.bytes,
    created_at: unixSeconds(row.createdAt),
    expires_at: unixSeconds(row.expiresAt),
    filename: row.filename,
    purpose: row.purpose,
    status: effectiveStatus(row),
    file,
  };
}

export function toUploadPartObject(row: UploadPartRow): UploadPartObject {
  return {
    id: row.id,
    object: "upload.part",
    created_at: unixSeconds(row.createdAt),
    upload_id: row.uploadId,
  };
}

export async function findUpload(
  q: Queryable,
  projectId: string,
  id: string,
  opts: { forUpdate?: boolean } = {},
): Promise<UploadRow | null> {
  const query = q
    .select()
    .from(uploads)
    .where(and(eq(uploads.id, id), eq(uploads.projectId, projectId)));
  const [row] = opts.forUpdate ? await query.for("update") : await query;
  return row ?? null;
}

export async function fileObjectOf(q: Queryable, row: UploadRow): Promise<FileObject | null> {
  if (row.fileId === null) return null;
  const [file] = await q.select().from(files).where(eq(files.id, row.fileId));
  return file ? toFileObject(file) : null;
}

/** Deletes the bytes of the upload's parts (cancel, expiry, leftovers after completion). */
export async function deletePartBlobs(q: Queryable, uploadId: string): Promise<void> {
  const parts = await q
    .select({ blobId: uploadParts.blobId })
    .from(uploadParts)
    .where(and(eq(uploadParts.uploadId, uploadId), isNotNull(uploadParts.blobId)));
  const ids = parts.map((p) => p.blobId!).filter((id) => id !== null);
  if (ids.length > 0) await q.delete(blobs).where(inArray(blobs.id, ids));
}

/** Frees the parts of uploads that expired while pending. */
export async function sweepExpiredUploads(db: Database): Promise<number> {
  const expired = await db
    .select({ id: uploads.id })
    .from(uploads)
    .where(and(eq(uploads.status, "pending"), lt(uploads.expiresAt, new Date())));
  for (const { id } of expired) await deletePartBlobs(db, id);
  return expired.length;
}
