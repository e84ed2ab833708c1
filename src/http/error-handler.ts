// Every error leaves in OpenAI's envelope with all four keys; unknown routes too.
import type { FastifyError } from "fastify";
import { DomainError } from "../store/domain-error.js";
import { ApiError } from "./api-error.js";
import { rootPlugin } from "./root-plugin.js";
import { type AjvError, schemaValidationError } from "./schema-errors.js";

const STATUS_OF_KIND = { invalid_request: 400, not_found: 404 } as const;

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof DomainError) {
    return new ApiError(STATUS_OF_KIND[err.kind], err.message, { param: err.param, code: err.code });
  }
  const e = err as FastifyError;
  if (e?.validation) return schemaValidationError(e.validation as AjvError[], e.validationContext);
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

export const errorHandling = rootPlugin(async (app) => {
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
});
