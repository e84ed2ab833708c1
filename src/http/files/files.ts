// /v1/files: upload (streamed into Postgres, validated on the way), list, retrieve, download,
// delete. Tenancy: every query is scoped to the key's project.
import { basename } from "node:path";
import { Readable } from "node:stream";
import type {} from "@fastify/multipart";
import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import { markBlobReady, readBlob } from "../../store/blobs/blob-store.js";
import { isUploadPurpose, UPLOAD_PURPOSES } from "../../store/files/file-purposes.js";
import {
  deleteFile,
  type FileRow,
  findFile,
  insertFile,
  listFiles,
  toFileObject,
} from "../../store/files/file-repository.js";
import { badRequest, notFound } from "../api-error.js";
import type { AppContext } from "../app-context.js";
import { attachmentDisposition } from "../content-disposition.js";
import { receiveOneFileForm } from "../one-file-form.js";
import { operationSchema } from "../openapi-document.js";
import type { OperationRoute } from "../operation-route.js";
import { toListPage } from "../pagination.js";
import { createContentInspector } from "./content-inspector.js";
import { expirySeconds } from "./expires-after.js";

export function cleanFilename(raw: string | undefined): string {
  // Keep what the client called it, minus any directory part; cap the length.
  const name = basename((raw ?? "").replaceAll("\\", "/")).trim();
  return (name.length > 0 ? name : "upload").slice(0, 255);
}

export function checkPurpose(
  purpose: string | undefined,
  allowed: readonly string[] = UPLOAD_PURPOSES,
): string {
  if (purpose === undefined || purpose === "") {
    throw badRequest("Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter");
  }
  if (!allowed.includes(purpose)) {
    throw badRequest(
      `Invalid value for 'purpose': '${purpose}'. Supported values are: ${allowed.map((p) => `'${p}'`).join(", ")}.`,
      "purpose",
      "invalid_value",
    );
  }
  return purpose;
}

/** Streams the multipart body: fields collected, the `file` part into a new blob. */
function receiveFileForm(ctx: AppContext, request: FastifyRequest) {
  const { config, database } = ctx;
  const limits = {
    maxBytes: config.maxFileBytes,
    maxLineBytes: config.maxLineBytes,
    maxValidationErrors: config.maxValidationErrors,
  };
  return receiveOneFileForm(request, database, {
    fileField: "file",
    notMultipart: "POST /v1/files takes multipart/form-data with 'file' and 'purpose'.",
    unexpectedFilePart: (fieldname, second) =>
      badRequest(
        second ? "Only one 'file' may be uploaded per request." : `Unexpected file field '${fieldname}'.`,
        fieldname,
      ),
    // The purpose is known here only if the client sent it before the file.
    checkFor: (fields) =>
      createContentInspector(
        limits,
        fields.purpose !== undefined && isUploadPurpose(fields.purpose) ? fields.purpose : undefined,
      ),
    refusedName: "upload",
  });
}

export const fileRoutes: FastifyPluginAsync<AppContext> = async (app, ctx) => {
  const { database } = ctx;
  const { db } = database;

  app.post("/v1/files", async (request) => {
    const { fields, file } = await receiveFileForm(ctx, request);
    try {
      if (file === null)
        throw badRequest("Missing required parameter: 'file'.", "file", "missing_required_parameter");
      const purpose = checkPurpose(fields.purpose);
      const expiresIn = expirySeconds(
        purpose,
        fields["expires_after[anchor]"],
        fields["expires_after[seconds]"],
      );
      const content = file.check.finish(purpose);
      const row = await db.transaction(async (tx) => {
        await markBlobReady(tx, file.writer.blobId);
        return insertFile(tx, {
          projectId: request.projectId,
          blobId: file.writer.blobId,
          filename: cleanFilename(file.filename),
          purpose,
          bytes: content.bytes,
          validation: content.validation,
          expiresInSeconds: expiresIn,
        });
      });
      return toFileObject(row);
    } catch (err) {
      await file?.writer.abort();
      throw err;
    }
  });

  app.get<OperationRoute<"listFiles">>(
    "/v1/files",
    { schema: operationSchema("listFiles") },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? 10000;
      const rows = await listFiles(db, request.projectId, {
        purpose: q.purpose,
        limit,
        after: q.after,
        order: q.order ?? "desc",
      });
      return toListPage(rows.map(toFileObject), limit);
    },
  );

  const fileOr404 = async (projectId: string, file_id: string): Promise<FileRow> => {
    const row = await findFile(db, projectId, file_id);
    if (!row) throw notFound("File", file_id, "file_id");
    return row;
  };

  app.get<OperationRoute<"retrieveFile">>(
    "/v1/files/:file_id",
    { schema: operationSchema("retrieveFile") },
    async (request) => toFileObject(await fileOr404(request.projectId, request.params.file_id)),
  );

  app.get<OperationRoute<"downloadFile">>(
    "/v1/files/:file_id/content",
    { schema: operationSchema("downloadFile") },
    async (request, reply) => {
      const row = await fileOr404(request.projectId, request.params.file_id);
      reply
        .header("content-type", "application/octet-stream")
        .header("content-length", String(row.bytes))
        .header("content-disposition", attachmentDisposition(row.filename));
      return reply.send(Readable.from(readBlob(database, row.blobId)));
    },
  );

  app.delete<OperationRoute<"deleteFile">>(
    "/v1/files/:file_id",
    { schema: operationSchema("deleteFile") },
    async (request) => {
      const { file_id } = request.params;
      if (!(await deleteFile(db, request.projectId, file_id))) throw notFound("File", file_id, "file_id");
      return { id: file_id, object: "file" as const, deleted: true };
    },
  );
};
