// Streaming multipart bodies (files, upload parts) with @fastify/multipart: one part at a
// time, file bytes passed on as they arrive, nothing buffered beyond a chunk.
import type { Readable } from "node:stream";
import { ApiError, badRequest } from "./api-error.js";

/**
 * After a refusal (size cap, not JSONL…) the rest of the body is still read and dropped, so
 * the client gets our error response instead of a broken pipe; beyond this many bytes the
 * connection is cut instead.
 */
export const MAX_DRAIN_BYTES = 256 * 1024 * 1024;

/**
 * Feeds every chunk of `stream` to `sink` (awaited: backpressure). If `sink` throws, the
 * stream is drained and the first error returned; an error of the stream itself (client gone,
 * malformed body) is thrown.
 */
export async function pumpFilePart(
  stream: Readable,
  sink: (chunk: Buffer) => Promise<void> | void,
  onDrainLimit: () => void,
): Promise<unknown> {
  let refusal: unknown = null;
  let drained = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (refusal !== null) {
      drained += chunk.length;
      if (drained > MAX_DRAIN_BYTES) {
        onDrainLimit();
        break;
      }
      continue;
    }
    try {
      await sink(chunk);
    } catch (err) {
      refusal = err;
    }
  }
  return refusal;
}

/** Reads a part the route does not want, to reach the next one. */
export async function skipPart(stream: Readable): Promise<void> {
  for await (const _ of stream) {
    // dropped
  }
}

/** Multipart parser errors (busboy, @fastify/multipart) → 400/413 in the envelope. */
export function multipartError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { code?: string; message?: string; statusCode?: number };
  if (e?.code === "FST_REQ_FILE_TOO_LARGE") {
    return new ApiError(413, "File is too large.", { param: "file", code: "file_too_large" });
  }
  if (e?.code === "FST_INVALID_MULTIPART_CONTENT_TYPE") {
    return badRequest("The request must be multipart/form-data.", null, "invalid_multipart");
  }
  const reason = e?.message ?? String(err);
  return badRequest(`Malformed multipart/form-data body: ${reason}`, null, "invalid_multipart");
}
