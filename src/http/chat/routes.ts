// POST /v1/chat/completions and POST /v1/completions on base models, tuned models and their
// checkpoints, whole or streamed (SSE), on the engine's generation (KV cache, greedy or seeded
// sampling, stop ids). One ChatModelServer per app holds the models (freed when the app closes).
//
// The engine side (tfjs, tokenizers, chat templates) is imported on the first completion
// request, not when the routes are registered: an API process that only serves files and jobs
// never loads it, which keeps the memory of a process that only takes uploads low.

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ChatModelServer } from "../../serving/model-server.js";
import { parseChatParams, parseCompletionParams } from "../../serving/request-params.js";
import { resolveServedModel } from "../../serving/served-model.js";
import type { ServingSession } from "../../serving/serving-session.js";
import type { AppContext } from "../app-context.js";
import { operationSchema } from "../openapi-document.js";

type Body = Record<string, unknown>;

/** The engine-side modules the routes call, loaded together on first use. */
interface ChatEngine {
  server: ChatModelServer;
  openServingSession: typeof import("../../serving/serving-session.js").openServingSession;
  completeChat: typeof import("./chat-completions.js").completeChat;
  completeText: typeof import("./text-completions.js").completeText;
}

async function loadChatEngine(ctx: AppContext): Promise<ChatEngine> {
  const [{ ChatModelServer }, { openServingSession }, { completeChat }, { completeText }] = await Promise.all(
    [
      import("../../serving/model-server.js"),
      import("../../serving/serving-session.js"),
      import("./chat-completions.js"),
      import("./text-completions.js"),
    ],
  );
  const server = new ChatModelServer({ adapterCacheSize: ctx.config.adapterCacheSize });
  return { server, openServingSession, completeChat, completeText };
}

export function registerChatRoutes(app: FastifyInstance, ctx: AppContext): void {
  let engine: Promise<ChatEngine> | null = null;
  const chatEngine = (): Promise<ChatEngine> => {
    // A failed import is not cached: the next request tries again.
    engine ??= loadChatEngine(ctx).catch((err: unknown) => {
      engine = null;
      throw err;
    });
    return engine;
  };
  app.addHook("onClose", async () => {
    if (engine) await (await engine.catch(() => null))?.server.close();
  });

  /** Open the request's model (404 model_not_found if it has none) for the length of `fn`. */
  const withSession = async <T>(
    request: FastifyRequest,
    model: string,
    fn: (session: ServingSession, loaded: ChatEngine) => Promise<T>,
  ): Promise<T> => {
    const served = await resolveServedModel(ctx, request.projectId, model);
    const loaded = await chatEngine();
    const session = await loaded.openServingSession(loaded.server, served);
    try {
      return await fn(session, loaded);
    } finally {
      session.release();
    }
  };

  app.post(
    "/v1/chat/completions",
    { schema: operationSchema("createChatCompletion") },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const params = parseChatParams(request.body as Body);
      return withSession(request, params.model, (session, loaded) =>
        loaded.completeChat(request, reply, session, params),
      );
    },
  );
  app.post(
    "/v1/completions",
    { schema: operationSchema("createCompletion") },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const params = parseCompletionParams(request.body as Body);
      return withSession(request, params.model, (session, loaded) =>
        loaded.completeText(request, reply, session, params),
      );
    },
  );
}
