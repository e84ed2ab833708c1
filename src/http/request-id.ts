// Every response carries x-request-id (the SDK exposes it as `_request_id` / `err.requestID`).
// A well-formed id sent by a proxy in front of us is kept, so logs line up across hops.
import type { IncomingMessage } from "node:http";
import { randomAlphanumeric } from "../store/ids.js";
import { rootPlugin } from "./root-plugin.js";

const ACCEPTABLE_INCOMING_ID = /^[A-Za-z0-9._:-]{8,128}$/;

export function generateRequestId(req: IncomingMessage): string {
  const incoming = req.headers["x-request-id"];
  if (typeof incoming === "string" && ACCEPTABLE_INCOMING_ID.test(incoming)) return incoming;
  return `req_${randomAlphanumeric(24)}`;
}

/** Every response names its request; and none is ever meant to be content-sniffed (downloads are user-supplied bytes). */
export const requestIdHeaders = rootPlugin(async (app) => {
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    reply.header("x-content-type-options", "nosniff");
  });
});
