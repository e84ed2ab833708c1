// Errors the store and the serving layer raise about the caller's request, without knowing
// HTTP: the http layer maps each kind to a status and OpenAI's error envelope.

export type DomainErrorKind = "invalid_request" | "not_found";

export class DomainError extends Error {
  readonly kind: DomainErrorKind;
  /** the request parameter at fault, as OpenAI names it ("after", "model", …) */
  readonly param: string | null;
  readonly code: string | null;

  constructor(
    kind: DomainErrorKind,
    message: string,
    opts: { param?: string | null; code?: string | null } = {},
  ) {
    super(message);
    this.kind = kind;
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
  }
}

/** The caller's input cannot be used (a bad cursor, a parameter out of range, …). */
export function invalidRequest(
  message: string,
  param: string | null = null,
  code: string | null = null,
): DomainError {
  return new DomainError("invalid_request", message, { param, code });
}

/** The same answer for a missing id and for another project's id. */
export function notFound(objectName: string, id: string, param: string): DomainError {
  return new DomainError("not_found", `No such ${objectName} object: ${id}`, { param });
}
