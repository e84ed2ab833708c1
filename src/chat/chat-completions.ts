// POST /v1/chat/completions for one request, once its model is open: the messages rendered with
// the model's chat template, then each choice generated in turn, returned whole or streamed as
// chat.completion.chunk events (role first, one finish_reason per choice, usage last if asked).

import type { FastifyReply, FastifyRequest } from "fastify";
import { clientGone } from "./client-connection.js";
import {
  type ChatTokenLogprob,
  chatChunk,
  chatCompletion,
  chatLogprobs,
  type FinishReason,
  newCompletionId,
  usageOf,
} from "./completion-objects.js";
import { completionBudget, samplingFor } from "./generation-plan.js";
import { encodeChatPrompt } from "./prompt-encoding.js";
import type { ChatParams } from "./request-params.js";
import { type ChoiceResult, runChoice } from "./run-choice.js";
import type { ServingSession } from "./serving-session.js";
import { SseStream } from "./sse-stream.js";

export async function completeChat(
  request: FastifyRequest,
  reply: FastifyReply,
  { runtime, model, fingerprint }: ServingSession,
  params: ChatParams,
) {
  const prompt = encodeChatPrompt(params.messages, params.tools, runtime.tokenizer, runtime.template);
  const budget = completionBudget(prompt.ids.length, params.maxTokens, runtime.contextLength, "messages");
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
      systemFingerprint: fingerprint,
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
        systemFingerprint: fingerprint,
        choices: [
          {
            index,
            delta,
            ...(params.logprobs ? { logprobs: logprobs ? { content: logprobs, refusal: null } : null } : {}),
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
          systemFingerprint: fingerprint,
          choices: [],
          usage: usageOf(prompt.ids.length, completionTokens),
        }),
      );
    }
    sse.end();
  } catch (err) {
    sse.failWith(err, request);
  }
  return reply;
}
