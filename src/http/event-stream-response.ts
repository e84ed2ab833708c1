// Starts a Server-Sent Events response. The reply is taken over from Fastify (hijack), so the
// headers Fastify would add are written here: the content type and x-request-id. Chat
// completion streams and the job events stream both start this way.
import type { ServerResponse } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";

export interface EventStreamResponse {
  raw: ServerResponse;
  /** the client closed the connection before the response ended */
  readonly closed: boolean;
}

export function openEventStream(request: FastifyRequest, reply: FastifyReply): EventStreamResponse {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-request-id": request.id,
    // proxies (nginx) must pass events through as they come
    "x-accel-buffering": "no",
  });
  raw.flushHeaders();
  const stream = { raw, closed: false };
  raw.on("close", () => {
    if (!raw.writableFinished) stream.closed = true;
  });
  return stream;
}
