// Bearer-key authentication, decided by the route the request matched: every route needs a key
// unless its options say `config: { public: true }` (the OpenAPI document, health, the console's
// static files). Deciding by the matched route, not by a prefix of the raw URL, means a
// percent-encoded spelling of a path (`/%761/models`) is held to the rules of the route it
// reaches. Runs at onRequest, before any body is read, so an unauthenticated upload is refused
// without streaming it anywhere. Unknown paths go to the not-found handler: a 404 that names
// only the method and path the caller sent, with or without a key.
import type { FastifyRequest } from "fastify";
import { findActiveKey } from "../store/auth/api-keys.js";
import type { Database } from "../store/db/client.js";
import { ApiError } from "./api-error.js";
import { rootPlugin } from "./root-plugin.js";

declare module "fastify" {
  interface FastifyRequest {
    /** the project of the request's API key (every route that is not public) */
    projectId: string;
    /** the id of the request's API key */
    apiKeyId: string;
  }
  interface FastifyContextConfig {
    /** true: the route answers without an API key */
    public?: boolean;
  }
}

function keyHintForMessage(key: string): string {
  return key.length <= 8 ? "****" : `${key.slice(0, 3)}****${key.slice(-4)}`;
}

/** Whether the matched route may be called without a key (unknown paths: the 404 handler). */
export function isPublicRoute(request: FastifyRequest): boolean {
  if (request.is404) return true;
  return request.routeOptions.config?.public === true;
}

export const auth = rootPlugin<{ db: Database }>(async (app, { db }) => {
  app.decorateRequest("projectId", "");
  app.decorateRequest("apiKeyId", "");
  app.addHook("onRequest", async (request) => {
    if (isPublicRoute(request)) return;
    const header = request.headers.authorization;
    const match = typeof header === "string" ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      throw new ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        { code: "missing_api_key" },
      );
    }
    const owner = await findActiveKey(db, match[1]);
    if (!owner) {
      throw new ApiError(401, `Incorrect API key provided: ${keyHintForMessage(match[1])}.`, {
        code: "invalid_api_key",
      });
    }
    request.projectId = owner.projectId;
    request.apiKeyId = owner.keyId;
  });
});
