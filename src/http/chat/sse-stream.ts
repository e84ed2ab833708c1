// Server-Sent Events the way OpenAI streams (and the SDK reads) them: `data: <json>\n\n` per
// chunk, `data: [DONE]\n\n` at the end, and an error after the start as `data: {"error":…}`.

import type { FastifyReply, FastifyRequest } from "fastify";
import type { ErrorEnvelope } from "../api-error.js";
import { toApiError } from "../error-handler.js";
import { type EventStreamResponse, openEventStream } from "../event-stream-response.js";

export class SseStream {
  private ended = false;
  private readonly stream: EventStreamResponse;

  constructor(request: FastifyRequest, reply: FastifyReply) {
    this.stream = openEventStream(request, reply);
  }

  /** the client closed the connection */
  get closed(): boolean {
    return this.stream.closed;
  }

  send(chunk: unknown): void {
    if (this.ended || this.closed) return;
    this.stream.raw.write(`data: ${JSON.stringify(chunk)}\n\n`);
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
    if (!this.closed) this.stream.raw.write("data: [DONE]\n\n");
    this.ended = true;
    this.stream.raw.end();
  }
}
