// Streaming multipart bodies (files, upload parts) with @fastify/multipart: one part at a
// time, file bytes passed on as they arrive, nothing buffered beyond a chunk.

import type { Readable } from "node:stream";
import type { Multipart } from "@fastify/multipart";
import type { FastifyRequest } from "fastify";
import { DomainError } from "../store/domain-error.js";
import { ApiError, badRequest } from "./api-error.js";
import { findUnstorableText, unstorableTextReason } from "./input-guard.js";

/**
 * An error of the body itself (busboy: a bad boundary, a truncated part, the client gone),
 * as opposed to one of ours (the database, a bug): only these are the caller's 400.
 */
class MalformedMultipart extends Error {
  constructor(readonly original: unknown) {
    super((original as Error)?.message ?? String(original));
  }
}

function asBodyError(err: unknown): unknown {
  if (err instanceof ApiError || err instanceof DomainError || err instanceof MalformedMultipart) return err;
  // @fastify/multipart's own refusals (limits, bad content type) carry a 4xx status
  const status = (err as { statusCode?: unknown })?.statusCode;
  if (typeof status === "number" && status >= 400 && status < 500) return err;
  return new MalformedMultipart(err);
}

/** The request's parts; errors the parser raises are marked as the body's. */
export async function* formParts(request: FastifyRequest): AsyncGenerator<Multipart> {
  const iterator = request.parts()[Symbol.asyncIterator]();
  try {
    while (true) {
      let next: IteratorResult<Multipart>;
      try {
        next = await iterator.next();
      } catch (err) {
        throw asBodyError(err);
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    await iterator.return?.();
  }
}

/**
 * The 400 for a part whose field value, field name or file name holds text that cannot be
 * stored (NUL, lone surrogates), or null. Multipart bodies are streamed past the app's input
 * hooks, so the routes ask this of every part, kept or not: one rule for every input.
 */
export function unstorablePartText(part: Multipart): ApiError | null {
  if (part.type === "field") {
    // `expires_after[anchor]` is named `expires_after.anchor`, as in a JSON body
    const param = part.fieldname.replace(/\[([^\]]*)\]/g, ".$1");
    const problem = findUnstorableText({ [param]: String(part.value) }, "");
    return problem ? badRequest(problem.message, problem.param, "invalid_value") : null;
  }
  const reason =
    unstorableTextReason(part.fieldname) ?? (part.filename ? unstorableTextReason(part.filename) : null);
  return reason === null
    ? null
    : badRequest(`Invalid file name: it ${reason}.`, part.fieldname, "invalid_value");
}

/** Iterates a part's bytes; errors of the stream are marked as the body's. */
async function* partChunks(stream: Readable): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    throw asBodyError(err);
  }
}

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
  for await (const chunk of partChunks(stream)) {
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
  for await (const _ of partChunks(stream)) {
    // dropped
  }
}

/**
 * The error to answer with: the caller's mistakes (ApiError, a malformed body, the plugin's
 * limits) as 4xx in the envelope; anything else (the database, a bug) unchanged, for the error
 * handler to log with the request id and answer 500 with a generic message.
 */
export function multipartError(err: unknown): unknown {
  if (err instanceof ApiError || err instanceof DomainError) return err;
  const e = (err instanceof MalformedMultipart ? err.original : err) as { code?: string; message?: string };
  if (e?.code === "FST_REQ_FILE_TOO_LARGE") {
    return new ApiError(413, "File is too large.", { param: "file", code: "file_too_large" });
  }
  if (e?.code === "FST_INVALID_MULTIPART_CONTENT_TYPE") {
    return badRequest("The request must be multipart/form-data.", null, "invalid_multipart");
  }
  if (err instanceof MalformedMultipart) {
    return badRequest(`Malformed multipart/form-data body: ${err.message}`, null, "invalid_multipart");
  }
  return err;
}
