// OpenAI's error envelope: {"error":{"message","type","param","code"}}, all four keys always
// present. Handlers throw ApiError; the app's error handler turns anything else into one.

export interface ErrorEnvelope {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;

  constructor(
    status: number,
    message: string,
    opts: { type?: string; param?: string | null; code?: string | null } = {},
  ) {
    super(message);
    this.status = status;
    this.type = opts.type ?? (status >= 500 ? "server_error" : "invalid_request_error");
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
  }

  toEnvelope(): ErrorEnvelope {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 invalid_request_error; also used for non-retriable conflicts (never 409: the SDK retries 409). */
export function badRequest(
  message: string,
  param: string | null = null,
  code: string | null = null,
): ApiError {
  return new ApiError(400, message, { param, code });
}

/** The same 404 for a missing id and for another project's id. */
export function notFound(objectName: string, id: string, param: string): ApiError {
  return new ApiError(404, `No such ${objectName} object: ${id}`, { param });
}
