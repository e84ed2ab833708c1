// The errors answered before a request reaches a route (a path that is not UTF-8, a path
// segment over maxParamLength, a request line or headers over Node's limit, a malformed
// request) leave in OpenAI's envelope like every other error, instead of Fastify's and
// Node's own shapes.
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "./api-error.js";

/** Fastify's `frameworkErrors`: FST_ERR_BAD_URL, FST_ERR_MAX_PARAM_LENGTH, … */
export function frameworkErrorToApiError(err: FastifyError): ApiError {
  switch (err.code) {
    case "FST_ERR_BAD_URL":
      return new ApiError(400, "Invalid URL: the path is not valid percent-encoded UTF-8.", {
        code: "invalid_url",
      });
    case "FST_ERR_MAX_PARAM_LENGTH":
      return new ApiError(414, "Invalid URL: a path segment is too long.", { code: "uri_too_long" });
    default:
      return new ApiError(500, "The server had an error while processing your request.", {
        type: "server_error",
      });
  }
}

export function handleFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const apiError = frameworkErrorToApiError(err);
  if (apiError.status >= 500) request.log.error({ err }, "request failed before routing");
  else request.log.info({ status: apiError.status, code: apiError.code }, apiError.message);
  reply
    .status(apiError.status)
    .header("x-request-id", request.id)
    .header("x-content-type-options", "nosniff")
    .type("application/json")
    .send(apiError.toEnvelope());
}

/** The answer to a request Node's HTTP parser refused, or null when there is none to send. */
export function clientErrorResponse(err: NodeJS.ErrnoException): string | null {
  let apiError: ApiError;
  if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    apiError = new ApiError(408, "The request took too long to arrive.", { code: "request_timeout" });
  } else if (err.code === "HPE_HEADER_OVERFLOW") {
    apiError = new ApiError(431, "The request's headers (or its URL) are too large.", {
      code: "request_header_fields_too_large",
    });
  } else {
    apiError = new ApiError(400, "Malformed HTTP request.", { code: "bad_request" });
  }
  const body = JSON.stringify(apiError.toEnvelope());
  return [
    `HTTP/1.1 ${apiError.status} ${STATUS_CODES[apiError.status]}`,
    "Content-Type: application/json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    "X-Content-Type-Options: nosniff",
    "Connection: close",
    "",
    body,
  ].join("\r\n");
}

/** Node's `clientError` handler (Fastify's `clientErrorHandler`). */
export function handleClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const response = clientErrorResponse(err);
  if (response !== null && socket.writable) socket.end(response);
  socket.destroy(err);
}
