// POST /v1/chat/completions on base models, tuned models and their checkpoints, whole or
// streamed (SSE): the body checked by the spec's CreateChatCompletionRequest schema, then by
// parseChatParams for the rules a schema cannot say; generation in chat-completions.ts.
import type { FastifyPluginAsync } from "fastify";
import { operationSchema } from "../openapi-document.js";
import type { OperationRoute } from "../operation-route.js";
import type { CompletionRouteOptions } from "./chat-engine.js";
import { parseChatParams } from "./completion-request.js";

export const chatCompletionRoutes: FastifyPluginAsync<CompletionRouteOptions> = async (app, opts) => {
  app.post<OperationRoute<"createChatCompletion">>(
    "/v1/chat/completions",
    { schema: operationSchema("createChatCompletion") },
    async (request, reply) => {
      const params = parseChatParams(request.body);
      return opts.withSession(request.projectId, params.model, (session, engine) =>
        engine.completeChat(request, reply, session, params),
      );
    },
  );
};
