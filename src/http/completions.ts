// POST /v1/completions (text completions, OpenAI's legacy endpoint) on base models, tuned
// models and their checkpoints, whole or streamed (SSE): the body checked by the spec's
// CreateCompletionRequest schema, then by parseCompletionParams; generation in
// chat/text-completions.ts, on the same serving as chat completions.
import type { FastifyPluginAsync } from "fastify";
import type { CompletionRouteOptions } from "./chat/chat-engine.js";
import { parseCompletionParams } from "./chat/completion-request.js";
import { operationSchema } from "./openapi-document.js";
import type { OperationRoute } from "./operation-route.js";

export const textCompletionRoutes: FastifyPluginAsync<CompletionRouteOptions> = async (app, opts) => {
  app.post<OperationRoute<"createCompletion">>(
    "/v1/completions",
    { schema: operationSchema("createCompletion") },
    async (request, reply) => {
      const params = parseCompletionParams(request.body);
      return opts.withSession(request.projectId, params.model, (session, engine) =>
        engine.completeText(request, reply, session, params),
      );
    },
  );
};
