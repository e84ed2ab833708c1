// Bearer-key authentication for every /v1 route. Runs at onRequest, before any body is read,
// so an unauthenticated upload is refused without streaming it anywhere.
import type { FastifyInstance } from "fastify";
import { findActiveKey } from "../auth/api-keys.js";
import type { Database } from "../db/client.js";
import { ApiError } from "./api-error.js";

declare module "fastify" {
  interface FastifyRequest {
    /** the project of the request's API key (every /v1 route) */
    projectId: string;
    /** the id of the request's API key */
    apiKeyId: string;
  }
}

function keyHintForMessage(key: string): string {
  return key.length <= 8 ? "****" : `${key.slice(0, 3)}****${key.slice(-4)}`;
}

export function registerAuth(app: FastifyInstance, db: Database): void {
  app.decorateRequest("projectId", "");
  app.decorateRequest("apiKeyId", "");
  app.addHook("onRequest", async (request) => {
    if (!request.url.startsWith("/v1/") && request.url !== "/v1") return;
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
}
