// POST /v1/chat/completions and POST /v1/completions on base models, tuned models and their
// checkpoints, whole or streamed (SSE), on the engine's generation (KV cache, greedy or seeded
// sampling, stop ids). One ChatModelServer per app holds the models (freed when the app closes).

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AppContext } from "../app-context.js";
import { operationSchema } from "../http/openapi-document.js";
import { completeChat } from "./chat-completions.js";
import { ChatModelServer } from "./model-server.js";
import { parseChatParams, parseCompletionParams } from "./request-params.js";
import { resolveServedModel } from "./served-model.js";
import { openServingSession, type ServingSession } from "./serving-session.js";
import { completeText } from "./text-completions.js";

type Body = Record<string, unknown>;

export function registerChatRoutes(app: FastifyInstance, ctx: AppContext): ChatModelServer {
  const server = new ChatModelServer({ adapterCacheSize: ctx.config.adapterCacheSize });
  app.addHook("onClose", async () => server.close());

  /** Open the request's model (404 model_not_found if it has none) for the length of `fn`. */
  const withSession = async <T>(
    request: FastifyRequest,
    model: string,
    fn: (session: ServingSession) => Promise<T>,
  ): Promise<T> => {
    const served = await resolveServedModel(ctx, request.projectId, model);
    const session = await openServingSession(server, served);
    try {
      return await fn(session);
    } finally {
      session.release();
    }
  };

  app.post(
    "/v1/chat/completions",
    { schema: operationSchema("createChatCompletion") },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const params = parseChatParams(request.body as Body);
      return withSession(request, params.model, (session) => completeChat(request, reply, session, params));
    },
  );
  app.post(
    "/v1/completions",
    { schema: operationSchema("createCompletion") },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const params = parseCompletionParams(request.body as Body);
      return withSession(request, params.model, (session) => completeText(request, reply, session, params));
    },
  );
  return server;
}
