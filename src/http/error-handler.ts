// Every error leaves in OpenAI's envelope with all four keys; unknown routes too.
import type { FastifyError, FastifyInstance } from "fastify";
import { DomainError } from "../store/domain-error.js";
import { ApiError } from "./api-error.js";

interface AjvError {
  instancePath?: string;
  keyword?: string;
  params?: Record<string, unknown>;
  message?: string;
  /** with ajv's `verbose`: the schema holding the failed keyword */
  parentSchema?: { description?: unknown };
}

/** "body/expires_after/seconds" + missing "x" → "expires_after.seconds.x" */
function paramOf(context: string | undefined, e: AjvError): string | null {
  const path = (e.instancePath ?? "").split("/").filter(Boolean);
  if (e.keyword === "required" && typeof e.params?.missingProperty === "string")
    path.push(e.params.missingProperty);
  if (e.keyword === "additionalProperties" && typeof e.params?.additionalProperty === "string") {
    path.push(e.params.additionalProperty);
  }
  return path.length > 0 ? path.join(".") : context === "body" ? null : null;
}

/**
 * An `anyOf` failure lists every branch's error, then its own. The branch that got deepest
 * into the value without a type error is what the caller meant (`stop` with 5 strings: the
 * array branch's maxItems), else no branch fits and the schema's description says what does.
 */
function mostSpecificError(errors: AjvError[]): { error: AjvError; anyOf: AjvError | null } {
  const anyOf = errors.find((e) => e.keyword === "anyOf" || e.keyword === "oneOf") ?? null;
  if (!anyOf) return { error: errors[0] ?? {}, anyOf: null };
  const depth = (e: AjvError) => (e.instancePath ?? "").split("/").length;
  const specific = errors
    .filter((e) => e !== anyOf && e.keyword !== "type" && e.keyword !== "anyOf" && e.keyword !== "oneOf")
    .sort((a, b) => depth(b) - depth(a))[0];
  return { error: specific ?? anyOf, anyOf };
}

function describeFailure(e: AjvError, param: string | null): string {
  const limit = e.params?.limit;
  switch (e.keyword) {
    case "maxItems":
      return `Invalid '${param}': at most ${limit} items are allowed.`;
    case "minItems":
      return `Invalid '${param}': at least ${limit} item${limit === 1 ? " is" : "s are"} required.`;
    case "maxLength":
      return `Invalid '${param}': at most ${limit} characters are allowed.`;
    case "anyOf":
    case "oneOf": {
      const description = typeof e.parentSchema?.description === "string" ? e.parentSchema.description : null;
      const expected = description
        ? description.replace(/^./, (c) => c.toLowerCase()).replace(/\.$/, "")
        : null;
      return `Invalid value for '${param}': ${expected ? `expected ${expected}` : "it has none of the allowed forms"}.`;
    }
    default:
      return `Invalid value for '${param}': ${e.message}.`;
  }
}

function validationError(err: FastifyError): ApiError {
  const errors = (err.validation ?? []) as AjvError[];
  const { error: first } = mostSpecificError(errors);
  const param = paramOf(err.validationContext, first);
  let message: string;
  if (first.keyword === "required") message = `Missing required parameter: '${param}'.`;
  else if (first.keyword === "additionalProperties")
    message = `Unrecognized request argument supplied: ${param}`;
  else if (first.keyword === "enum" && Array.isArray(first.params?.allowedValues)) {
    message = `Invalid value for '${param}': must be one of ${(first.params.allowedValues as unknown[]).map((v) => `'${v}'`).join(", ")}.`;
  } else message = describeFailure(first, param ?? err.validationContext ?? null);
  const code = first.keyword === "required" ? "missing_required_parameter" : "invalid_value";
  return new ApiError(400, message, { param, code });
}

const STATUS_OF_KIND = { invalid_request: 400, not_found: 404 } as const;

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof DomainError) {
    return new ApiError(STATUS_OF_KIND[err.kind], err.message, { param: err.param, code: err.code });
  }
  const e = err as FastifyError;
  if (e?.validation) return validationError(e);
  switch (e?.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ApiError(413, "Request body is too large.", { code: "request_too_large" });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new ApiError(415, `Unsupported Content-Type: ${e.message}`, { code: "unsupported_media_type" });
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new ApiError(400, "We could not parse the JSON body of your request.", { code: "invalid_json" });
  }
  if (e instanceof SyntaxError && (e as FastifyError).statusCode === 400) {
    return new ApiError(400, `We could not parse the JSON body of your request: ${e.message}`, {
      code: "invalid_json",
    });
  }
  const status = typeof e?.statusCode === "number" ? e.statusCode : 500;
  if (status >= 400 && status < 500) return new ApiError(status, e.message, { code: e.code ?? null });
  return new ApiError(500, "The server had an error while processing your request.", {
    type: "server_error",
  });
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500) request.log.error({ err }, "request failed");
    else
      request.log.info(
        { status: apiError.status, code: apiError.code, param: apiError.param },
        apiError.message,
      );
    return reply.status(apiError.status).type("application/json").send(apiError.toEnvelope());
  });
  app.setNotFoundHandler((request, reply) => {
    const apiError = new ApiError(404, `Invalid URL (${request.method} ${request.url.split("?")[0]})`, {
      code: "unknown_url",
    });
    return reply.status(404).type("application/json").send(apiError.toEnvelope());
  });
}
