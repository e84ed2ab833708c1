// One choice of a completion: generate tokens with the engine (KV cache, greedy or seeded
// sampling, stop ids), turn them into text incrementally, apply `stop` strings, and report text
// as it becomes final, with the tokens it came from. Streaming and non-streaming responses
// both consume these pieces, so they cannot differ in text.

import { type GeneratedToken, generate } from "../../worker/engine/generate.js";
import type { HfTokenizer } from "../../worker/engine/hf/tokenizer.js";
import type { CausalLM } from "../../worker/engine/model/decoder.js";
import { IncrementalDetokenizer } from "./incremental-detokenizer.js";
import { StopSequenceFilter } from "./stop-sequences.js";

export interface SamplingParams {
  maxNewTokens: number;
  /** 0 = greedy */
  temperature: number;
  topP: number;
  seed: number;
  stop: readonly string[];
  /** alternatives per token to report (0 = none); tokens' own logprobs are always kept */
  topLogprobs: number;
  frequencyPenalty: number;
  presencePenalty: number;
  logitBias: ReadonlyMap<number, number>;
}

/** What a choice needs beyond sampling: constrained decoding, special tokens in the text. */
export interface ChoiceExtras {
  /** masks tokens that would break a grammar (see generate's processLogits) */
  processLogits?: (logits: Float32Array, generated: readonly number[]) => void;
  /** keep special tokens in the text (tool-call markers such as <|python_tag|> are special) */
  keepSpecialTokens?: boolean;
}

/** Final text and the tokens that produced it (tokens may be reported with later text). */
export interface ChoicePiece {
  text: string;
  tokens: GeneratedToken[];
}

export interface ChoiceResult {
  text: string;
  /** generated tokens, the end-of-turn token excluded */
  tokens: GeneratedToken[];
  finishReason: "stop" | "length";
  /** tokens the model produced, the end-of-turn token included (usage.completion_tokens) */
  completionTokens: number;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function runChoice(
  model: CausalLM,
  tokenizer: HfTokenizer,
  promptIds: readonly number[],
  stopIds: ReadonlySet<number>,
  params: SamplingParams,
  onPiece?: (piece: ChoicePiece) => void,
  /** polled after every token: true ends generation (the client went away) */
  cancelled?: () => boolean,
  extras: ChoiceExtras = {},
): Promise<ChoiceResult> {
  const detokenizer = new IncrementalDetokenizer(tokenizer, !extras.keepSpecialTokens);
  const filter = new StopSequenceFilter(params.stop);
  const tokens: GeneratedToken[] = [];
  let pendingTokens: GeneratedToken[] = [];
  let text = "";
  const emit = (piece: string) => {
    if (piece.length === 0) return;
    text += piece;
    onPiece?.({ text: piece, tokens: pendingTokens });
    pendingTokens = [];
  };

  const result = await generate(model, promptIds, {
    maxNewTokens: params.maxNewTokens,
    temperature: params.temperature,
    topP: params.topP,
    seed: params.seed,
    stopTokenIds: stopIds,
    topLogprobs: params.topLogprobs,
    frequencyPenalty: params.frequencyPenalty,
    presencePenalty: params.presencePenalty,
    logitBias: params.logitBias,
    processLogits: extras.processLogits,
    onToken: async (token) => {
      tokens.push(token);
      pendingTokens.push(token);
      emit(filter.push(detokenizer.push(token.id)));
      if (filter.stopped) return false;
      // On CPU backends a token's data() resolves as a microtask: without a real yield the whole
      // generation would run before any socket I/O — no streamed bytes leave, no other request
      // is served, and a client's disconnect is never seen.
      await yieldToEventLoop();
      return cancelled?.() ? false : undefined;
    },
  });
  if (!filter.stopped) emit(filter.push(detokenizer.flush()));
  if (!filter.stopped) emit(filter.flush());
  // tokens whose text was cut by a stop string still happened: report them with the last piece
  if (pendingTokens.length > 0) onPiece?.({ text: "", tokens: pendingTokens });
  return {
    text,
    tokens,
    finishReason: filter.stopped ? "stop" : result.finishReason,
    completionTokens: result.tokens.length,
  };
}
