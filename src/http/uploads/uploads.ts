// /v1/uploads: a large file in parts. Create → add parts (multipart `data`, in parallel) →
// complete (ordered part_ids, optional md5, byte total checked) or cancel. Completion turns
// the parts into an ordinary File without copying their bytes, after the same checks as
// POST /v1/files (size, and for fine-tune, JSONL validation) run over them in order.
import type {} from "@fastify/multipart";
import { and, eq, inArray, isNotNull, sql } from "drizzle-orm";
import type { FastifyPluginAsync } from "fastify";
import { appendBlobs, markBlobReady, readBlob } from "../../store/blobs/blob-store.js";
import { blobs, uploadParts, uploads } from "../../store/db/schema.js";
import { insertFile, toFileObject } from "../../store/files/file-repository.js";
import {
  deletePartBlobs,
  effectiveStatus,
  fileObjectOf,
  findUpload,
  toUploadObject,
  toUploadPartObject,
  UPLOAD_LIFETIME_SECONDS,
  type UploadRow,
} from "../../store/files/upload-repository.js";
import { newId } from "../../store/ids.js";
import { ApiError, badRequest, notFound } from "../api-error.js";
import type { AppContext } from "../app-context.js";
import { createContentInspector, fileTooLarge } from "../files/content-inspector.js";
import { expirySeconds } from "../files/expires-after.js";
import { cleanFilename } from "../files/files.js";
import { multipartError } from "../multipart-stream.js";
import { receiveOneFileForm } from "../one-file-form.js";
import { operationSchema } from "../openapi-document.js";
import type { OperationRoute } from "../operation-route.js";

function requirePending(row: UploadRow, action: string): void {
  const status = effectiveStatus(row);
  if (status !== "pending") {
    throw badRequest(`Cannot ${action}: upload ${row.id} is ${status}.`, "upload_id", `upload_${status}`);
  }
}

/** A part that takes the upload past the `bytes` it was created with. */
function partsExceedDeclared(upload: UploadRow, total: number): ApiError {
  return badRequest(
    `The parts of upload ${upload.id} would hold ${total} bytes, more than the ${upload.bytes} bytes it was created with.`,
    "data",
    "upload_bytes_exceeded",
  );
}

export const uploadRoutes: FastifyPluginAsync<AppContext> = async (app, ctx) => {
  const { config, database } = ctx;
  const { db } = database;

  const uploadOr404 = async (projectId: string, upload_id: string): Promise<UploadRow> => {
    const row = await findUpload(db, projectId, upload_id);
    if (!row) throw notFound("Upload", upload_id, "upload_id");
    return row;
  };

  app.post<OperationRoute<"createUpload">>(
    "/v1/uploads",
    { schema: operationSchema("createUpload") },
    async (request) => {
      const body = request.body;
      if (body.bytes > config.maxUploadBytes) throw fileTooLarge(config.maxUploadBytes, "bytes");
      const fileExpiresAfter = body.expires_after
        ? expirySeconds(body.purpose, body.expires_after.anchor, body.expires_after.seconds)
        : null;
      const now = new Date();
      const [row] = await db
        .insert(uploads)
        .values({
          id: newId("upload_"),
          projectId: request.projectId,
          filename: cleanFilename(body.filename),
          purpose: body.purpose,
          bytes: body.bytes,
          mimeType: body.mime_type,
          status: "pending",
          fileExpiresAfterSeconds: fileExpiresAfter,
          createdAt: now,
          expiresAt: new Date(now.getTime() + UPLOAD_LIFETIME_SECONDS * 1000),
        })
        .returning();
      return toUploadObject(row, null);
    },
  );

  app.post<OperationRoute<"addUploadPart">>(
    "/v1/uploads/:upload_id/parts",
    { schema: operationSchema("addUploadPart") },
    async (request) => {
      const upload = await uploadOr404(request.projectId, request.params.upload_id);
      requirePending(upload, "add a part");
      const { file } = await receiveOneFileForm(request, database, {
        fileField: "data",
        notMultipart: "Adding a part takes multipart/form-data with a 'data' field.",
        unexpectedFilePart: (fieldname) =>
          badRequest(`Unexpected file field '${fieldname}': send one 'data' field.`, fieldname),
        checkFor: () => ({
          push(chunk: Buffer, written: number) {
            if (written + chunk.length > config.maxUploadPartBytes)
              throw fileTooLarge(config.maxUploadPartBytes, "data");
            if (written + chunk.length > upload.bytes)
              throw partsExceedDeclared(upload, written + chunk.length);
          },
        }),
        refusedName: "part",
      });
      const writer = file?.writer ?? null;
      try {
        if (writer === null)
          throw badRequest("Missing required parameter: 'data'.", "data", "missing_required_parameter");
        const bytes = writer.bytes;
        const blobId = writer.blobId;
        const row = await db.transaction(async (tx) => {
          const locked = await findUpload(tx, request.projectId, upload.id, { forUpdate: true });
          if (!locked) throw notFound("Upload", upload.id, "upload_id");
          requirePending(locked, "add a part");
          // parts added in parallel: the sum is checked under the upload's row lock
          const [{ total }] = await tx
            .select({ total: sql<string>`coalesce(sum(${uploadParts.bytes}), 0)` })
            .from(uploadParts)
            .where(and(eq(uploadParts.uploadId, upload.id), isNotNull(uploadParts.blobId)));
          if (Number(total) + bytes > locked.bytes) throw partsExceedDeclared(locked, Number(total) + bytes);
          await markBlobReady(tx, blobId);
          const [part] = await tx
            .insert(uploadParts)
            .values({ id: newId("part_"), uploadId: upload.id, projectId: request.projectId, blobId, bytes })
            .returning();
          return part;
        });
        return toUploadPartObject(row);
      } catch (err) {
        await writer?.abort().catch((e) => request.log.error({ err: e }, "could not delete a refused part"));
        throw multipartError(err);
      }
    },
  );

  app.post<OperationRoute<"completeUpload">>(
    "/v1/uploads/:upload_id/complete",
    { schema: operationSchema("completeUpload") },
    async (request) => {
      const upload = await uploadOr404(request.projectId, request.params.upload_id);
      requirePending(upload, "complete it");
      const { part_ids: partIds, md5 } = request.body;
      if (new Set(partIds).size !== partIds.length)
        throw badRequest("part_ids lists a part more than once.", "part_ids");
      const rows =
        partIds.length === 0
          ? []
          : await db
              .select()
              .from(uploadParts)
              .where(and(eq(uploadParts.uploadId, upload.id), inArray(uploadParts.id, partIds)));
      const byId = new Map(rows.map((r) => [r.id, r]));
      const ordered = partIds.map((id, i) => {
        const part = byId.get(id);
        if (!part || part.blobId === null)
          throw badRequest(`No such part in upload ${upload.id}: ${id}.`, `part_ids[${i}]`);
        return part;
      });
      const total = ordered.reduce((sum, p) => sum + p.bytes, 0);
      if (total !== upload.bytes) {
        throw badRequest(
          `The parts add up to ${total} bytes, but the upload was created with bytes=${upload.bytes}.`,
          "part_ids",
          "bytes_mismatch",
        );
      }

      // Check the bytes in file order: size, fine-tune JSONL validation, md5.
      const inspector = createContentInspector(
        {
          maxBytes: config.maxUploadBytes,
          maxLineBytes: config.maxLineBytes,
          maxValidationErrors: config.maxValidationErrors,
        },
        upload.purpose,
        { md5: md5 !== undefined },
      );
      for (const part of ordered) {
        for await (const chunk of readBlob(database, part.blobId!)) inspector.push(chunk);
      }
      const content = inspector.finish(upload.purpose);
      if (md5 !== undefined && content.md5 !== md5.trim().toLowerCase()) {
        throw badRequest(
          `md5 mismatch: the parts hash to ${content.md5}, not ${md5}.`,
          "md5",
          "md5_mismatch",
        );
      }

      const completed = await db.transaction(async (tx) => {
        const locked = await findUpload(tx, request.projectId, upload.id, { forUpdate: true });
        if (!locked) throw notFound("Upload", upload.id, "upload_id");
        requirePending(locked, "complete it");
        const blobId = newId("blob_");
        await tx.insert(blobs).values({ id: blobId, projectId: request.projectId, state: "writing" });
        await appendBlobs(
          tx,
          blobId,
          ordered.map((p) => p.blobId!),
        );
        await markBlobReady(tx, blobId);
        await deletePartBlobs(tx, upload.id); // parts left out of part_ids
        // expires_after given at create, else the purpose's default (batch: 30 days)
        const fileExpiresIn =
          locked.fileExpiresAfterSeconds ?? expirySeconds(upload.purpose, undefined, undefined);
        const file = await insertFile(tx, {
          projectId: request.projectId,
          blobId,
          filename: upload.filename,
          purpose: upload.purpose,
          bytes: content.bytes,
          validation: content.validation,
          expiresInSeconds: fileExpiresIn,
        });
        const [row] = await tx
          .update(uploads)
          .set({ status: "completed", fileId: file.id })
          .where(eq(uploads.id, upload.id))
          .returning();
        return { row, file };
      });
      return toUploadObject(completed.row, toFileObject(completed.file));
    },
  );

  app.post<OperationRoute<"cancelUpload">>(
    "/v1/uploads/:upload_id/cancel",
    { schema: operationSchema("cancelUpload") },
    async (request) => {
      const upload = await uploadOr404(request.projectId, request.params.upload_id);
      const row = await db.transaction(async (tx) => {
        const locked = await findUpload(tx, request.projectId, upload.id, { forUpdate: true });
        if (!locked) throw notFound("Upload", upload.id, "upload_id");
        if (locked.status === "cancelled") return locked;
        if (locked.status === "completed") {
          throw new ApiError(400, `Cannot cancel: upload ${upload.id} is completed.`, {
            param: "upload_id",
            code: "upload_completed",
          });
        }
        await deletePartBlobs(tx, upload.id);
        const [updated] = await tx
          .update(uploads)
          .set({ status: "cancelled" })
          .where(eq(uploads.id, upload.id))
          .returning();
        return updated;
      });
      return toUploadObject(row, await fileObjectOf(db, row));
    },
  );
};
