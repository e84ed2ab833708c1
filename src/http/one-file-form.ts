// A multipart form of text fields and exactly one file part (POST /v1/files, an upload's
// part), streamed: the fields collected, the file's bytes checked and written to a new blob.
import type { FastifyRequest } from "fastify";
import { type BlobDatabase, type BlobWriter, startBlob } from "../store/blobs/blob-store.js";
import { type ApiError, badRequest } from "./api-error.js";
import { formParts, multipartError, pumpFilePart, skipPart, unstorablePartText } from "./multipart-stream.js";

/** Sees each chunk of the file before it is written; throwing refuses the file. */
export interface FileChunkCheck {
  push(chunk: Buffer, written: number): void | Promise<void>;
}

export interface OneFileForm<C extends FileChunkCheck> {
  /** The field that carries the file. */
  fileField: string;
  /** The 400 when the body is not multipart/form-data. */
  notMultipart: string;
  /** The 400 for a file part in another field, or a second one. */
  unexpectedFilePart(fieldname: string, second: boolean): ApiError;
  /** Made as the file part starts, from the fields sent before it. */
  checkFor(fields: Readonly<Record<string, string>>): C;
  /** What a refused blob is called in the log line when it cannot be deleted. */
  refusedName: string;
}

export interface ReceivedOneFileForm<C> {
  fields: Record<string, string>;
  /** Written and finished (not yet marked ready); null when no file part came. */
  file: { filename: string | undefined; writer: BlobWriter; check: C } | null;
}

/** Reads the whole body; on a refusal, deletes what was written and throws the caller's error. */
export async function receiveOneFileForm<C extends FileChunkCheck>(
  request: FastifyRequest,
  database: BlobDatabase,
  form: OneFileForm<C>,
): Promise<ReceivedOneFileForm<C>> {
  if (!request.isMultipart()) throw badRequest(form.notMultipart, null, "invalid_multipart");
  const fields: Record<string, string> = {};
  let file: ReceivedOneFileForm<C>["file"] = null;
  let refusal: unknown = null;
  try {
    for await (const part of formParts(request)) {
      const problem = unstorablePartText(part);
      if (problem) {
        if (part.type === "file") await skipPart(part.file);
        refusal ??= problem;
        continue;
      }
      if (part.type === "field") {
        fields[part.fieldname] = String(part.value);
        continue;
      }
      if (part.fieldname !== form.fileField || file !== null) {
        await skipPart(part.file);
        refusal ??= form.unexpectedFilePart(part.fieldname, file !== null);
        continue;
      }
      const check = form.checkFor(fields);
      const writer = await startBlob(database, request.projectId);
      file = { filename: part.filename, writer, check };
      const failed = await pumpFilePart(
        part.file,
        async (chunk) => {
          await check.push(chunk, writer.bytes);
          await writer.write(chunk);
        },
        () => request.raw.destroy(),
      );
      refusal ??= failed;
    }
    if (refusal !== null) throw refusal;
    if (file !== null) await file.writer.finish();
    return { fields, file };
  } catch (err) {
    await file?.writer
      .abort()
      .catch((e) => request.log.error({ err: e }, `could not delete a refused ${form.refusedName}`));
    throw multipartError(err);
  }
}
