// POST /v1/chat/completions and POST /v1/completions on base models, tuned models and their
// checkpoints, whole or streamed (SSE), on the engine's generation (KV cache, greedy or seeded
// sampling, stop ids). Choices run one after another; each streams as it is generated.

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AppContext } from "../app-context.js";
import { badRequest, type ErrorEnvelope } from "../http/api-error.js";
import { toApiError } from "../http/error-handler.js";
import { operationSchema } from "../http/openapi-document.js";
import {
  type ChatTokenLogprob,
  chatChunk,
  chatCompletion,
  chatLogprobs,
  completionLogprobs,
  type FinishReason,
  newCompletionId,
  textCompletion,
  usageOf,
} from "./completion-objects.js";
import { ChatModelServer } from "./model-server.js";
import { encodeChatPrompt, encodeCompletionPrompt } from "./prompt-encoding.js";
import { choiceSeed, parseChatParams, parseCompletionParams, type CommonParams } from "./request-params.js";
import { type ChoiceResult, runChoice, type SamplingParams } from "./run-choice.js";
import { openServingSession, type ServingSession } from "./serving-session.js";
import { resolveServedModel } from "./served-model.js";
import { SseStream } from "./sse-stream.js";

type Body = Record<string, unknown>;

/**
 * How many tokens may be generated: `max_tokens` if the context has room for it, else the rest
 * of the context; a prompt that leaves no room is the caller's 400, naming the context length.
 */
export function completionBudget(
  promptTokens: number,
  maxTokens: number | null,
  contextLength: number,
  param: "messages" | "prompt",
): number {
  const what = param === "messages" ? "messages" : "prompt";
  if (promptTokens >= contextLength) {
    throw badRequest(
      `This model's maximum context length is ${contextLength} tokens. However, your ${what} resulted in ${promptTokens} tokens. Please reduce the length of the ${what}.`,
      param,
      "context_length_exceeded",
    );
  }
  if (maxTokens !== null && promptTokens + maxTokens > contextLength) {
    throw badRequest(
      `This model's maximum context length is ${contextLength} tokens. However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the ${what}, ${maxTokens} in the completion). Please reduce the length of the ${what} or completion.`,
      param,
      "context_length_exceeded",
    );
  }
  return maxTokens ?? contextLength - promptTokens;
}

function samplingFor(
  params: CommonParams,
  maxNewTokens: number,
  topLogprobs: number,
  index: number,
): SamplingParams {
  return {
    maxNewTokens,
    temperature: params.temperature,
    topP: params.topP,
    seed: choiceSeed(params.seed, index),
    stop: params.stop,
    topLogprobs,
  };
}

/** True once the client has closed the connection before the response was complete. */
function clientGone(reply: FastifyReply): () => boolean {
  let gone = false;
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) gone = true;
  });
  return () => gone;
}

function errorEnvelope(err: unknown, request: FastifyRequest): ErrorEnvelope {
  const apiError = toApiError(err);
  if (apiError.status >= 500) request.log.error({ err }, "generation failed after the stream started");
  return apiError.toEnvelope();
}

export function registerChatRoutes(app: FastifyInstance, ctx: AppContext): ChatModelServer {
  const server = new ChatModelServer({ adapterCacheSize: ctx.config.adapterCacheSize });
  app.addHook("onClose", async () => server.close());

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
      return withSession(request, params.model, async ({ runtime, model }) => {
        const prompt = encodeChatPrompt(params.messages, params.tools, runtime.tokenizer, runtime.template);
        const budget = completionBudget(
          prompt.ids.length,
          params.maxTokens,
          runtime.contextLength,
          "messages",
        );
        const topLogprobs = params.logprobs ? params.topLogprobs : 0;
        const id = newCompletionId("chatcmpl");
        const created = Math.floor(Date.now() / 1000);
        const run = (index: number, onPiece?: Parameters<typeof runChoice>[5], cancelled?: () => boolean) =>
          runChoice(
            model,
            runtime.tokenizer,
            prompt.ids,
            runtime.stopIds,
            samplingFor(params, budget, topLogprobs, index),
            onPiece,
            cancelled,
          );

        if (!params.stream) {
          const gone = clientGone(reply);
          const results: ChoiceResult[] = [];
          for (let i = 0; i < params.n && !gone(); i++) results.push(await run(i, undefined, gone));
          return chatCompletion({
            id,
            created,
            model: params.model,
            choices: results.map((r) => ({
              text: r.text,
              finishReason: r.finishReason,
              logprobs: params.logprobs ? chatLogprobs(runtime.tokenizer, r.tokens) : null,
            })),
            usage: usageOf(
              prompt.ids.length,
              results.reduce((s, r) => s + r.completionTokens, 0),
            ),
          });
        }

        const sse = new SseStream(request, reply);
        const usageField = params.includeUsage ? { usage: null } : {};
        const send = (
          index: number,
          delta: { role?: "assistant"; content?: string; refusal?: null },
          finish: FinishReason | null,
          logprobs?: ChatTokenLogprob[],
        ) =>
          sse.send(
            chatChunk({
              id,
              created,
              model: params.model,
              choices: [
                {
                  index,
                  delta,
                  ...(params.logprobs
                    ? { logprobs: logprobs ? { content: logprobs, refusal: null } : null }
                    : {}),
                  finish_reason: finish,
                },
              ],
              ...usageField,
            }),
          );
        try {
          let completionTokens = 0;
          for (let i = 0; i < params.n && !sse.closed; i++) {
            // the first delta of every choice carries the role (the SDK's stream helper needs it)
            send(i, { role: "assistant", content: "", refusal: null }, null);
            const result = await run(
              i,
              (piece) => {
                if (piece.text.length === 0 && !params.logprobs) return;
                send(
                  i,
                  { content: piece.text },
                  null,
                  params.logprobs ? chatLogprobs(runtime.tokenizer, piece.tokens) : undefined,
                );
              },
              () => sse.closed,
            );
            completionTokens += result.completionTokens;
            send(i, {}, result.finishReason);
          }
          if (params.includeUsage) {
            sse.send(
              chatChunk({
                id,
                created,
                model: params.model,
                choices: [],
                usage: usageOf(prompt.ids.length, completionTokens),
              }),
            );
          }
          sse.end();
        } catch (err) {
          sse.fail(errorEnvelope(err, request));
        }
        return reply;
      });
    },
  );

  app.post(
    "/v1/completions",
    { schema: operationSchema("createCompletion") },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const params = parseCompletionParams(request.body as Body);
      return withSession(request, params.model, async ({ runtime, model }) => {
        const vocab = runtime.model.config.vocabSize;
        const prompts = params.prompts.map((p) => {
          if (typeof p === "string") return encodeCompletionPrompt(p, runtime.tokenizer);
          const bad = p.find((t) => t >= vocab);
          if (bad !== undefined)
            throw badRequest(
              `Invalid token id ${bad} in 'prompt': the model's vocabulary has ${vocab} tokens.`,
              "prompt",
              "invalid_value",
            );
          return { ids: p, text: runtime.tokenizer.decode(p) };
        });
        const budgets = prompts.map((p) => {
          if (p.ids.length === 0)
            throw badRequest("Invalid 'prompt': it encodes to no tokens.", "prompt", "invalid_value");
          return completionBudget(p.ids.length, params.maxTokens, runtime.contextLength, "prompt");
        });
        const topLogprobs = params.logprobs ?? 0;
        const id = newCompletionId("cmpl");
        const created = Math.floor(Date.now() / 1000);
        const promptTokens = prompts.reduce((s, p) => s + p.ids.length, 0);
        const jobs = prompts.flatMap((prompt, pi) =>
          Array.from({ length: params.n }, (_, i) => ({
            prompt,
            budget: budgets[pi],
            index: pi * params.n + i,
          })),
        );
        const run = (
          job: (typeof jobs)[number],
          onPiece?: Parameters<typeof runChoice>[5],
          cancelled?: () => boolean,
        ) =>
          runChoice(
            model,
            runtime.tokenizer,
            job.prompt.ids,
            runtime.stopIds,
            samplingFor(params, job.budget, topLogprobs, job.index),
            onPiece,
            cancelled,
          );
        const echoed = (job: (typeof jobs)[number]) => (params.echo ? job.prompt.text : "");

        if (!params.stream) {
          const gone = clientGone(reply);
          const choices = [];
          let completionTokens = 0;
          for (const job of jobs) {
            if (gone()) break;
            const r = await run(job, undefined, gone);
            completionTokens += r.completionTokens;
            const head = echoed(job);
            choices.push({
              index: job.index,
              text: head + r.text,
              finish_reason: r.finishReason,
              logprobs:
                params.logprobs === null
                  ? null
                  : completionLogprobs(runtime.tokenizer, r.tokens, topLogprobs > 0, head.length),
            });
          }
          return textCompletion({
            id,
            created,
            model: params.model,
            choices,
            usage: usageOf(promptTokens, completionTokens),
          });
        }

        const sse = new SseStream(request, reply);
        const usageField = params.includeUsage ? { usage: null } : {};
        try {
          let completionTokens = 0;
          for (const job of jobs) {
            if (sse.closed) break;
            const head = echoed(job);
            let offset = head.length;
            const send = (
              text: string,
              finish: FinishReason | null,
              logprobs: ReturnType<typeof completionLogprobs> | null,
            ) =>
              sse.send(
                textCompletion({
                  id,
                  created,
                  model: params.model,
                  choices: [{ index: job.index, text, finish_reason: finish, logprobs }],
                  ...usageField,
                }),
              );
            if (head.length > 0)
              send(
                head,
                null,
                params.logprobs === null
                  ? null
                  : completionLogprobs(runtime.tokenizer, [], topLogprobs > 0, 0),
              );
            const r = await run(
              job,
              (piece) => {
                if (piece.text.length === 0 && params.logprobs === null) return;
                send(
                  piece.text,
                  null,
                  params.logprobs === null
                    ? null
                    : completionLogprobs(runtime.tokenizer, piece.tokens, topLogprobs > 0, offset),
                );
                offset += piece.text.length;
              },
              () => sse.closed,
            );
            completionTokens += r.completionTokens;
            send("", r.finishReason, null);
          }
          if (params.includeUsage) {
            sse.send(
              textCompletion({
                id,
                created,
                model: params.model,
                choices: [],
                usage: usageOf(promptTokens, completionTokens),
              }),
            );
          }
          sse.end();
        } catch (err) {
          sse.fail(errorEnvelope(err, request));
        }
        return reply;
      });
    },
  );
  return server;
}
