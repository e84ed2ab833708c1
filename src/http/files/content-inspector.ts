// Checks a file's bytes as they stream past, for POST /v1/files and for completed Uploads:
// the size cap (413), and for purpose fine-tune the JSONL validation (a file that is not
// JSONL at all is refused with 400 naming the line). The purpose may not be known yet when
// the bytes arrive (multipart fields come in the client's order), so validation runs
// speculatively and its verdict is applied once the purpose is known.
import { createHash, type Hash } from "node:crypto";
import {
  createJsonlValidator,
  JsonlFatalError,
  type JsonlSummary,
  type JsonlValidator,
} from "../../../worker/engine/data/jsonl-validator.js";
import { ApiError, badRequest } from "../api-error.js";

export interface InspectorLimits {
  maxBytes: number;
  maxLineBytes: number;
  maxValidationErrors: number;
}

export interface InspectedContent {
  bytes: number;
  /** set for purpose fine-tune */
  validation: JsonlSummary | null;
  /** hex, when asked for */
  md5: string | null;
}

export interface ContentInspector {
  readonly bytes: number;
  /** Throws ApiError (413 over the cap; 400 for non-JSONL content when the purpose is fine-tune). */
  push(chunk: Uint8Array): void;
  /** Throws ApiError 400 when the content does not suit `purpose`. */
  finish(purpose: string): InspectedContent;
}

export function fileTooLarge(maxBytes: number, param = "file"): ApiError {
  return new ApiError(413, `File is too large: the maximum size is ${maxBytes} bytes.`, {
    param,
    code: "file_too_large",
  });
}

function notJsonl(err: JsonlFatalError): ApiError {
  return badRequest(`Invalid file format for fine-tuning: ${err.message}`, "file", err.code);
}

/**
 * `purpose`: the purpose if already known, else undefined (then validation runs in case it
 * turns out to be fine-tune).
 */
export function createContentInspector(
  limits: InspectorLimits,
  purpose: string | undefined,
  opts: { md5?: boolean } = {},
): ContentInspector {
  let bytes = 0;
  let validator: JsonlValidator | null =
    purpose === undefined || purpose === "fine-tune"
      ? createJsonlValidator({ maxLineBytes: limits.maxLineBytes, maxErrors: limits.maxValidationErrors })
      : null;
  let fatal: JsonlFatalError | null = null;
  const md5: Hash | null = opts.md5 ? createHash("md5") : null;

  const onFatal = (err: unknown): void => {
    if (!(err instanceof JsonlFatalError)) throw err;
    validator = null;
    fatal = err;
    if (purpose === "fine-tune") throw notJsonl(err);
  };

  return {
    get bytes() {
      return bytes;
    },
    push(chunk) {
      bytes += chunk.length;
      if (bytes > limits.maxBytes) throw fileTooLarge(limits.maxBytes);
      md5?.update(chunk);
      if (validator) {
        try {
          validator.push(chunk);
        } catch (err) {
          onFatal(err);
        }
      }
    },
    finish(finalPurpose) {
      if (bytes === 0)
        throw badRequest("The file is empty: upload a file with content.", "file", "empty_file");
      let validation: JsonlSummary | null = null;
      if (finalPurpose === "fine-tune") {
        if (validator) {
          try {
            validation = validator.finish();
          } catch (err) {
            if (err instanceof JsonlFatalError) throw notJsonl(err);
            throw err;
          }
        }
        if (fatal) throw notJsonl(fatal);
        if (validation && validation.examples === 0) {
          throw badRequest("The file has no examples: every line is blank.", "file", "empty_file");
        }
      }
      return { bytes, validation, md5: md5 ? md5.digest("hex") : null };
    },
  };
}
