// The model serving behind POST /v1/chat/completions and POST /v1/completions: one
// ChatModelServer per app holds the models (freed when the app closes), on the engine's
// generation (KV cache, greedy or seeded sampling, stop ids).
//
// The engine side (tfjs, tokenizers, chat templates) is imported on the first completion
// request, not when the routes are registered: an API process that only serves files and jobs
// never loads it, which keeps its memory down.
import type { FastifyInstance } from "fastify";
import type { ChatModelServer } from "../../serving/model-server.js";
import { resolveServedModel } from "../../serving/served-model.js";
import type { ServingSession } from "../../serving/serving-session.js";
import type { AppContext } from "../app-context.js";

/** The engine-side modules the routes call, loaded together on first use. */
export interface ChatEngine {
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

/** Opens the request's model (404 model_not_found if it has none) for the length of `fn`. */
export type WithServingSession = <T>(
  projectId: string,
  model: string,
  fn: (session: ServingSession, engine: ChatEngine) => Promise<T>,
) => Promise<T>;

/** What the completion routes get: the app's context and the shared serving. */
export interface CompletionRouteOptions extends AppContext {
  withSession: WithServingSession;
}

/** The app's serving, loaded on first use and closed with `app`. */
export function chatServing(app: FastifyInstance, ctx: AppContext): WithServingSession {
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
  return async (projectId, model, fn) => {
    const served = await resolveServedModel(ctx, projectId, model);
    const loaded = await chatEngine();
    const session = await loaded.openServingSession(loaded.server, served);
    try {
      return await fn(session, loaded);
    } finally {
      session.release();
    }
  };
}
