// What each choice of a request runs with: the token budget the context leaves (a prompt that
// does not fit is the caller's 400, naming the context length) and its sampling settings.

import { invalidRequest } from "../store/domain-error.js";
import { type CommonParams, choiceSeed } from "./generation-request.js";
import type { SamplingParams } from "./run-choice.js";

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
    throw invalidRequest(
      `This model's maximum context length is ${contextLength} tokens. However, your ${what} resulted in ${promptTokens} tokens. Please reduce the length of the ${what}.`,
      param,
      "context_length_exceeded",
    );
  }
  if (maxTokens !== null && promptTokens + maxTokens > contextLength) {
    throw invalidRequest(
      `This model's maximum context length is ${contextLength} tokens. However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the ${what}, ${maxTokens} in the completion). Please reduce the length of the ${what} or completion.`,
      param,
      "context_length_exceeded",
    );
  }
  return maxTokens ?? contextLength - promptTokens;
}

/** Sampling settings of choice `index` (its own seed, derived from the request's). */
export function samplingFor(
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
    frequencyPenalty: params.frequencyPenalty,
    presencePenalty: params.presencePenalty,
    logitBias: params.logitBias,
  };
}
