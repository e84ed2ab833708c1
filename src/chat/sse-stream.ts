// Server-Sent Events the way OpenAI streams (and the SDK reads) them: `data: <json>\n\n` per
// chunk, `data: [DONE]\n\n` at the end, and an error after the start as `data: {"error":…}`.
// The response is taken over from Fastify (hijack), so headers Fastify would add are written
// here: the content type and x-request-id.

import type { FastifyReply, FastifyRequest } from "fastify";
import type { ErrorEnvelope } from "../http/api-error.js";
import { toApiError } from "../http/error-handler.js";

export class SseStream {
  private ended = false;
  /** the client closed the connection */
  closed = false;

  constructor(
    request: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-request-id": request.id,
      // proxies (nginx) must pass tokens through as they come
      "x-accel-buffering": "no",
    });
    raw.flushHeaders();
    raw.on("close", () => {
      if (!raw.writableFinished) this.closed = true;
    });
  }

  send(chunk: unknown): void {
    if (this.ended || this.closed) return;
    this.reply.raw.write(`data: ${JSON.stringify(chunk)}\n\n`);
  }

  /** An error after the stream started: the SDK raises it as an APIError. */
  fail(error: ErrorEnvelope): void {
    this.send(error);
    this.end();
  }

  /** `fail` with any thrown error, in OpenAI's envelope (server errors are logged, not detailed). */
  failWith(err: unknown, request: FastifyRequest): void {
    const apiError = toApiError(err);
    if (apiError.status >= 500) request.log.error({ err }, "generation failed after the stream started");
    this.fail(apiError.toEnvelope());
  }

  end(): void {
    if (this.ended) return;
    if (!this.closed) this.reply.raw.write("data: [DONE]\n\n");
    this.ended = true;
    this.reply.raw.end();
  }
}
