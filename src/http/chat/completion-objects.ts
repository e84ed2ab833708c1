// The JSON objects OpenAI returns for chat completions and (legacy) completions, whole and as
// stream chunks, with every required-but-nullable field present (logprobs, refusal, content).

import type { GeneratedToken } from "../../../worker/engine/generation/generate.js";
import type { HfTokenizer } from "../../../worker/engine/hf/tokenizer.js";
import type { components } from "../../contract/openapi-types.js";
import { tokenBytes } from "../../serving/token-bytes.js";
import { randomAlphanumeric } from "../../store/ids.js";

type Schemas = components["schemas"];
type ChatCompletionObject = Schemas["CreateChatCompletionResponse"];
type ChatChunkObject = Schemas["ChatCompletionChunk"];
type TextCompletionObject = Schemas["CreateCompletionResponse"];
export type ChatToolCall = Schemas["ChatCompletionMessageToolCall"];
export type Usage = Schemas["CompletionUsage"];
export type ChatTokenLogprob = Schemas["ChatCompletionTokenLogprob"];
export type CompletionLogprobs = NonNullable<TextCompletionObject["choices"][number]["logprobs"]>;
/** How a text completion's choice ends here (the spec lists OpenAI's others too). */
export type TextFinishReason = Extract<
  TextCompletionObject["choices"][number]["finish_reason"],
  "stop" | "length"
>;
/** How a chat completion's choice ends here. */
export type FinishReason = Extract<
  ChatCompletionObject["choices"][number]["finish_reason"],
  "stop" | "length" | "tool_calls"
>;

/** `call_` and 24 letters/digits, like OpenAI's tool call ids. */
export function newToolCallId(): string {
  return `call_${randomAlphanumeric(24)}`;
}

export function newCompletionId(kind: "chatcmpl" | "cmpl"): string {
  return `${kind}-${randomAlphanumeric(29)}`;
}

/** What every object of one completion, whole or streamed, repeats. */
export interface CompletionHead {
  id: string;
  created: number;
  model: string;
  systemFingerprint: string;
}

export function completionHead(
  kind: "chatcmpl" | "cmpl",
  model: string,
  systemFingerprint: string,
): CompletionHead {
  return { id: newCompletionId(kind), created: Math.floor(Date.now() / 1000), model, systemFingerprint };
}

export function usageOf(promptTokens: number, completionTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

/**
 * A token's text as OpenAI shows it (a partial UTF-8 character shows as U+FFFD) and its own raw
 * bytes, so that joining the bytes of consecutive tokens rebuilds the text exactly.
 */
function tokenText(tokenizer: HfTokenizer, id: number): { token: string; bytes: number[] } {
  return { token: tokenizer.decode([id]), bytes: [...tokenBytes(tokenizer, id)] };
}

/** Each entry's `bytes` are always there (the spec allows null, for tokens without bytes). */
export function chatLogprobs(tokenizer: HfTokenizer, tokens: readonly GeneratedToken[]) {
  return tokens.map((t) => ({
    ...tokenText(tokenizer, t.id),
    logprob: t.logprob,
    top_logprobs: (t.topLogprobs ?? []).map((alt) => ({
      ...tokenText(tokenizer, alt.id),
      logprob: alt.logprob,
    })),
  }));
}

/** Legacy completions' logprobs; text_offset counts from the start of the choice's text. */
export function completionLogprobs(
  tokenizer: HfTokenizer,
  tokens: readonly GeneratedToken[],
  withTop: boolean,
  startOffset: number,
): CompletionLogprobs {
  const texts: string[] = [];
  const offsets: number[] = [];
  const tops: Record<string, number>[] = [];
  let offset = startOffset;
  for (const t of tokens) {
    const { token } = tokenText(tokenizer, t.id);
    texts.push(token);
    offsets.push(offset);
    offset += token.length;
    if (withTop) {
      const top: Record<string, number> = {};
      for (const alt of t.topLogprobs ?? []) top[tokenText(tokenizer, alt.id).token] ??= alt.logprob;
      tops.push(top);
    }
  }
  return {
    tokens: texts,
    token_logprobs: tokens.map((t) => t.logprob),
    top_logprobs: withTop ? tops : null,
    text_offset: offsets,
  };
}

export function chatCompletion(
  opts: CompletionHead & {
    choices: {
      /** null when the reply is only tool calls */
      text: string | null;
      toolCalls?: ChatToolCall[];
      finishReason: FinishReason;
      logprobs: ChatTokenLogprob[] | null;
    }[];
    usage: Usage;
  },
): ChatCompletionObject {
  return {
    id: opts.id,
    object: "chat.completion",
    created: opts.created,
    model: opts.model,
    choices: opts.choices.map((c, index) => ({
      index,
      message: {
        role: "assistant",
        content: c.text,
        refusal: null,
        annotations: [],
        ...(c.toolCalls?.length ? { tool_calls: c.toolCalls } : {}),
      },
      logprobs: c.logprobs === null ? null : { content: c.logprobs, refusal: null },
      finish_reason: c.finishReason,
    })),
    usage: opts.usage,
    system_fingerprint: opts.systemFingerprint,
    service_tier: "default",
  };
}

export function chatChunk(
  opts: CompletionHead & {
    choices: ChatChunkObject["choices"];
    /** include_usage: null on every chunk but the last, which has no choices */
    usage?: Usage | null;
  },
): ChatChunkObject {
  return {
    id: opts.id,
    object: "chat.completion.chunk",
    created: opts.created,
    model: opts.model,
    system_fingerprint: opts.systemFingerprint,
    service_tier: "default",
    choices: opts.choices,
    ...(opts.usage !== undefined ? { usage: opts.usage } : {}),
  };
}

/** A whole legacy completion, or one streamed chunk of it (OpenAI streams the same object type). */
export function textCompletion(
  opts: CompletionHead & {
    choices: TextCompletionObject["choices"];
    /** include_usage: null on every chunk but the last (the spec's whole object always has usage) */
    usage?: Usage | null;
  },
): TextCompletionObject | (Omit<TextCompletionObject, "usage"> & { usage: null }) {
  return {
    id: opts.id,
    object: "text_completion",
    created: opts.created,
    model: opts.model,
    system_fingerprint: opts.systemFingerprint,
    choices: opts.choices,
    ...(opts.usage !== undefined ? { usage: opts.usage } : {}),
  };
}
