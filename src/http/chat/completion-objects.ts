// The JSON objects OpenAI returns for chat completions and (legacy) completions, whole and as
// stream chunks, with every required-but-nullable field present (logprobs, refusal, content).

import type { GeneratedToken } from "../../../worker/engine/generation/generate.js";
import type { HfTokenizer } from "../../../worker/engine/hf/tokenizer.js";
import { tokenBytes } from "../../serving/token-bytes.js";
import { randomAlphanumeric } from "../../store/ids.js";

export type FinishReason = "stop" | "length" | "tool_calls";

export interface ChatToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** `call_` and 24 letters/digits, like OpenAI's tool call ids. */
export function newToolCallId(): string {
  return `call_${randomAlphanumeric(24)}`;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function newCompletionId(kind: "chatcmpl" | "cmpl"): string {
  return `${kind}-${randomAlphanumeric(29)}`;
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

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

export function chatLogprobs(tokenizer: HfTokenizer, tokens: readonly GeneratedToken[]): ChatTokenLogprob[] {
  return tokens.map((t) => ({
    ...tokenText(tokenizer, t.id),
    logprob: t.logprob,
    top_logprobs: (t.topLogprobs ?? []).map((alt) => ({
      ...tokenText(tokenizer, alt.id),
      logprob: alt.logprob,
    })),
  }));
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[] | null;
  text_offset: number[];
}

/** Legacy completions' logprobs; text_offset counts from the start of the choice's text. */
export function completionLogprobs(
  tokenizer: HfTokenizer,
  tokens: readonly GeneratedToken[],
  withTop: boolean,
  startOffset: number,
): CompletionLogprobs {
  const out: CompletionLogprobs = {
    tokens: [],
    token_logprobs: [],
    top_logprobs: withTop ? [] : null,
    text_offset: [],
  };
  let offset = startOffset;
  for (const t of tokens) {
    const { token } = tokenText(tokenizer, t.id);
    out.tokens.push(token);
    out.token_logprobs.push(t.logprob);
    out.text_offset.push(offset);
    offset += token.length;
    if (withTop) {
      const top: Record<string, number> = {};
      for (const alt of t.topLogprobs ?? []) top[tokenText(tokenizer, alt.id).token] ??= alt.logprob;
      out.top_logprobs!.push(top);
    }
  }
  return out;
}

export function chatCompletion(opts: {
  id: string;
  created: number;
  model: string;
  systemFingerprint: string;
  choices: {
    /** null when the reply is only tool calls */
    text: string | null;
    toolCalls?: ChatToolCall[];
    finishReason: FinishReason;
    logprobs: ChatTokenLogprob[] | null;
  }[];
  usage: Usage;
}) {
  return {
    id: opts.id,
    object: "chat.completion" as const,
    created: opts.created,
    model: opts.model,
    choices: opts.choices.map((c, index) => ({
      index,
      message: {
        role: "assistant" as const,
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

export function chatChunk(opts: {
  id: string;
  created: number;
  model: string;
  systemFingerprint: string;
  choices: {
    index: number;
    delta: { role?: "assistant"; content?: string; refusal?: null; tool_calls?: unknown[] };
    logprobs?: { content: ChatTokenLogprob[]; refusal: null } | null;
    finish_reason: FinishReason | null;
  }[];
  /** include_usage: null on every chunk but the last, which has no choices */
  usage?: Usage | null;
}) {
  const chunk: Record<string, unknown> = {
    id: opts.id,
    object: "chat.completion.chunk",
    created: opts.created,
    model: opts.model,
    system_fingerprint: opts.systemFingerprint,
    service_tier: "default",
    choices: opts.choices,
  };
  if (opts.usage !== undefined) chunk.usage = opts.usage;
  return chunk;
}

/** A whole legacy completion, or one streamed chunk of it (OpenAI streams the same object type). */
export function textCompletion(opts: {
  id: string;
  created: number;
  model: string;
  systemFingerprint: string;
  choices: {
    index: number;
    text: string;
    finish_reason: FinishReason | null;
    logprobs: CompletionLogprobs | null;
  }[];
  usage?: Usage | null;
}) {
  const out: Record<string, unknown> = {
    id: opts.id,
    object: "text_completion",
    created: opts.created,
    model: opts.model,
    system_fingerprint: opts.systemFingerprint,
    choices: opts.choices,
  };
  if (opts.usage !== undefined) out.usage = opts.usage;
  return out;
}
