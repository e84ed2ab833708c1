// POST /v1/completions (legacy text completions) for one request, once its model is open: each
// prompt tokenized as {"prompt","completion"} training data is, n choices per prompt (index =
// prompt × n + choice), returned whole or streamed as text_completion events.

import type { FastifyReply, FastifyRequest } from "fastify";
import { completionBudget, samplingFor } from "../../serving/generation-plan.js";
import type { CompletionParams } from "../../serving/generation-request.js";
import { encodeCompletionPrompt } from "../../serving/prompt-encoding.js";
import { allChoices, runChoice } from "../../serving/run-choice.js";
import type { ServingSession } from "../../serving/serving-session.js";
import { badRequest } from "../api-error.js";
import { clientGone } from "./client-connection.js";
import {
  completionHead,
  completionLogprobs,
  type TextFinishReason,
  textCompletion,
  usageOf,
} from "./completion-objects.js";
import { checkLogitBiasIds } from "./completion-request.js";
import { SseStream } from "./sse-stream.js";

export async function completeText(
  request: FastifyRequest,
  reply: FastifyReply,
  { runtime, model, fingerprint }: ServingSession,
  params: CompletionParams,
) {
  const vocab = runtime.model.config.vocabSize;
  checkLogitBiasIds(params.logitBias, vocab);
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
  const heading = completionHead("cmpl", params.model, fingerprint);
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
    // every prompt × choice decodes at once, as rows of the model's continuous batch
    const results = await allChoices(jobs.map((job) => run(job, undefined, gone)));
    for (const [k, job] of jobs.entries()) {
      const r = results[k];
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
      ...heading,
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
        finish: TextFinishReason | null,
        logprobs: ReturnType<typeof completionLogprobs> | null,
      ) =>
        sse.send(
          textCompletion({
            ...heading,
            choices: [{ index: job.index, text, finish_reason: finish, logprobs }],
            ...usageField,
          }),
        );
      if (head.length > 0)
        send(
          head,
          null,
          params.logprobs === null ? null : completionLogprobs(runtime.tokenizer, [], topLogprobs > 0, 0),
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
          ...heading,
          choices: [],
          usage: usageOf(promptTokens, completionTokens),
        }),
      );
    }
    sse.end();
  } catch (err) {
    sse.failWith(err, request);
  }
  return reply;
}
