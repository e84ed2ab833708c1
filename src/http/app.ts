// The Fastify instance, built from a config and an open database: the server and the tests
// both use this, so what the tests exercise is what runs.
//
// Composition: the plugins that set up the whole app act on the root (root-plugin.ts): response
// headers, the error envelope, auth, input guards, OpenAPI validation, JSON parsing, multipart.
// Each resource's routes are then an encapsulated plugin of their own, one file per resource;
// they inherit all of the above, and what they add (hooks, state) stays theirs.
import multipart from "@fastify/multipart";
import Fastify, { type FastifyInstance } from "fastify";
import type { Config } from "../config.js";
import type { DatabaseHandle } from "../store/db/client.js";
import type { AppContext } from "./app-context.js";
import { auth } from "./auth.js";
import { chatServing } from "./chat/chat-engine.js";
import { chatCompletionRoutes } from "./chat/completions.js";
import { textCompletionRoutes } from "./completions.js";
import { consoleRoutes } from "./console/console.js";
import { errorHandling } from "./error-handler.js";
import { fileRoutes } from "./files/files.js";
import { checkpointRoutes } from "./fine-tuning/checkpoints.js";
import { fineTuningEvents } from "./fine-tuning/events.js";
import { fineTuningJobControl } from "./fine-tuning/job-control.js";
import { fineTuningJobs } from "./fine-tuning/jobs.js";
import { modelDownloads } from "./fine-tuning/model-downloads.js";
import { handleClientError, handleFrameworkError } from "./framework-errors.js";
import { inputGuards } from "./input-guard.js";
import { jsonBody } from "./json-body.js";
import { modelRoutes } from "./models/models.js";
import { openApi } from "./openapi.js";
import { parseQueryString } from "./query-string.js";
import { generateRequestId, requestIdHeaders } from "./request-id.js";
import { uploadRoutes } from "./uploads/uploads.js";
import { webhookEndpointRoutes } from "./webhooks/webhook-endpoints.js";

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
    clientErrorHandler: handleClientError,
  });
  const ctx: AppContext = { config: opts.config, database: opts.database };

  await app.register(requestIdHeaders);
  await app.register(errorHandling);
  await app.register(auth, { db: opts.database.db });
  await app.register(inputGuards);
  await app.register(openApi);
  await app.register(jsonBody);
  await app.register(multipart, {
    // Sizes are enforced while streaming (413 in the envelope), not by busboy.
    limits: { fileSize: Number.MAX_SAFE_INTEGER, files: 4, fields: 32, fieldSize: 64 * 1024, parts: 40 },
    throwFileSizeLimit: false,
  });

  app.get("/health", { config: { public: true } }, async () => ({
    status: "ok",
    database: opts.database.kind,
  }));
  await app.register(fileRoutes, ctx);
  await app.register(uploadRoutes, ctx);
  await app.register(modelRoutes, ctx);
  await app.register(fineTuningJobs, ctx);
  await app.register(fineTuningJobControl, ctx);
  await app.register(fineTuningEvents, ctx);
  await app.register(checkpointRoutes, ctx);
  await app.register(modelDownloads, ctx);
  const withSession = chatServing(app, ctx);
  await app.register(chatCompletionRoutes, { ...ctx, withSession });
  await app.register(textCompletionRoutes, { ...ctx, withSession });
  await app.register(webhookEndpointRoutes, ctx);
  await app.register(consoleRoutes);
  return app;
}
