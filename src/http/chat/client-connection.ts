// Whether the client is still there: generation stops when it is not (no tokens for nobody).
import type { FastifyReply } from "fastify";

/** True once the client has closed the connection before the response was complete. */
export function clientGone(reply: FastifyReply): () => boolean {
  let gone = false;
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) gone = true;
  });
  return () => gone;
}
