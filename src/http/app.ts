// The Fastify instance, built from a config and an open database: the server and the tests
// both use this, so what the tests exercise is what runs.
import multipart from "@fastify/multipart";
import Fastify, { type FastifyInstance } from "fastify";
import type { Config } from "../config.js";
import type { DatabaseHandle } from "../store/db/client.js";
import type { AppContext } from "./app-context.js";
import { registerAuth } from "./auth.js";
import { registerChatRoutes } from "./chat/routes.js";
import { registerConsoleRoutes } from "./console/routes.js";
import { registerErrorHandling } from "./error-handler.js";
import { registerFileRoutes } from "./files/routes.js";
import { registerFineTuningRoutes } from "./fine-tuning/routes.js";
import { handleClientError, handleFrameworkError } from "./framework-errors.js";
import { registerInputGuards } from "./input-guard.js";
import { parseJsonBody } from "./json-body.js";
import { registerModelRoutes } from "./models/routes.js";
import { openApiDocument } from "./openapi-document.js";
import { parseQueryString } from "./query-string.js";
import { generateRequestId } from "./request-id.js";
import { buildRequestValidator } from "./request-validator.js";
import { registerUploadRoutes } from "./uploads/routes.js";
import { registerWebhookRoutes } from "./webhooks/routes.js";

export interface BuildAppOptions {
  config: Config;
  database: DatabaseHandle;
  /** pino options, or false for no logs (tests) */
  logger?: boolean | { level: string };
}

export async function buildApp(opts: BuildAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? { level: opts.config.logLevel },
    genReqId: generateRequestId,
    routerOptions: { querystringParser: parseQueryString },
    // Streamed files don't count against this; it bounds JSON bodies.
    bodyLimit: 1024 * 1024,
    // Slow clients streaming large files must not be cut off; the SDK's own timeout is 10 min.
    requestTimeout: 0,
    // Errors before routing (bad percent-encoding, over-long segments, bad request lines and
    // headers) in the envelope too.
    frameworkErrors: handleFrameworkError,
    schemaController: { compilersFactory: { buildValidator: buildRequestValidator() } },
    clientErrorHandler: handleClientError,
  });
  const ctx: AppContext = { config: opts.config, database: opts.database };

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    // No response is ever meant to be content-sniffed (downloads are user-supplied bytes).
    reply.header("x-content-type-options", "nosniff");
  });
  registerErrorHandling(app);
  registerAuth(app, opts.database.db);
  registerInputGuards(app);

  // Some clients send `Content-Type: application/json` with an empty body on POSTs that take
  // none (cancel): accept that as no body instead of failing the JSON parse.
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(String(body)));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  await app.register(multipart, {
    // Sizes are enforced while streaming (413 in the envelope), not by busboy.
    limits: { fileSize: Number.MAX_SAFE_INTEGER, files: 4, fields: 32, fieldSize: 64 * 1024, parts: 40 },
    throwFileSizeLimit: false,
  });

  app.get("/openapi.json", { config: { public: true } }, async () => openApiDocument());
  app.get("/health", { config: { public: true } }, async () => ({
    status: "ok",
    database: opts.database.kind,
  }));
  registerFileRoutes(app, ctx);
  registerUploadRoutes(app, ctx);
  registerModelRoutes(app, ctx);
  registerFineTuningRoutes(app, ctx);
  registerChatRoutes(app, ctx);
  registerWebhookRoutes(app, ctx);
  registerConsoleRoutes(app);
  return app;
}
