// The choices of a completion: generate tokens with the engine's continuous batcher (KV cache,
// one forward per step for all rows, greedy or seeded sampling, stop ids), turn each choice's
// tokens into text incrementally, apply `stop` strings, and report text as it becomes final, with
// the tokens it came from. Streaming and non-streaming responses
// both consume these pieces, so they cannot differ in text.

import { batcherFor } from "../../worker/engine/generation/continuous-batcher.js";
import type { GeneratedToken, GenerateOptions } from "../../worker/engine/generation/generate.js";
import type { HfTokenizer } from "../../worker/engine/hf/tokenizer.js";
import type { LoraAdapter } from "../../worker/engine/lora/lora-adapter.js";
import type { CausalLM } from "../../worker/engine/model/causal-lm.js";
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

/** The weights a request decodes with: a model and the LoRA adapter of its rows (null = none). */
export interface DecodeTarget {
  model: CausalLM;
  adapter: LoraAdapter | null;
}

/** One choice to run: its sampling, where its text goes, when it stops early, its constraint. */
export interface ChoiceRun {
  params: SamplingParams;
  onPiece?: (piece: ChoicePiece) => void;
  /** polled after every token: true ends generation (the client went away) */
  cancelled?: () => boolean;
  extras?: ChoiceExtras;
}

/**
 * Run the choices of one prompt together: the prompt is prefilled once and every choice decodes
 * as a row of the model's continuous batch (shared with other requests on the same base model).
 * One promise per choice.
 */
export function runChoices(
  target: DecodeTarget,
  tokenizer: HfTokenizer,
  promptIds: readonly number[],
  stopIds: ReadonlySet<number>,
  runs: readonly ChoiceRun[],
): Promise<ChoiceResult>[] {
  const states = runs.map((run) => {
    const extras = run.extras ?? {};
    const detokenizer = new IncrementalDetokenizer(tokenizer, !extras.keepSpecialTokens);
    const filter = new StopSequenceFilter(run.params.stop);
    const state = { tokens: [] as GeneratedToken[], pendingTokens: [] as GeneratedToken[], text: "" };
    const emit = (piece: string) => {
      if (piece.length === 0) return;
      state.text += piece;
      run.onPiece?.({ text: piece, tokens: state.pendingTokens });
      state.pendingTokens = [];
    };
    const options: GenerateOptions = {
      maxNewTokens: run.params.maxNewTokens,
      temperature: run.params.temperature,
      topP: run.params.topP,
      seed: run.params.seed,
      stopTokenIds: stopIds,
      topLogprobs: run.params.topLogprobs,
      frequencyPenalty: run.params.frequencyPenalty,
      presencePenalty: run.params.presencePenalty,
      logitBias: run.params.logitBias,
      processLogits: extras.processLogits,
      // the batcher yields to the event loop between steps, so socket I/O and disconnects are seen
      onToken: (token) => {
        state.tokens.push(token);
        state.pendingTokens.push(token);
        emit(filter.push(detokenizer.push(token.id)));
        if (filter.stopped) return false;
        return run.cancelled?.() ? false : undefined;
      },
    };
    return { run, detokenizer, filter, state, emit, options };
  });
  const pending = batcherFor(target.model).generate(
    promptIds,
    target.adapter,
    states.map((s) => s.options),
  );
  return pending.map(async (promise, i) => {
    const result = await promise;
    const { run, detokenizer, filter, state, emit } = states[i];
    if (!filter.stopped) emit(filter.push(detokenizer.flush()));
    if (!filter.stopped) emit(filter.flush());
    // tokens whose text was cut by a stop string still happened: report them with the last piece
    if (state.pendingTokens.length > 0) run.onPiece?.({ text: "", tokens: state.pendingTokens });
    return {
      text: state.text,
      tokens: state.tokens,
      finishReason: filter.stopped ? "stop" : result.finishReason,
      completionTokens: result.tokens.length,
    };
  });
}

export function runChoice(
  target: DecodeTarget,
  tokenizer: HfTokenizer,
  promptIds: readonly number[],
  stopIds: ReadonlySet<number>,
  params: SamplingParams,
  onPiece?: (piece: ChoicePiece) => void,
  /** polled after every token: true ends generation (the client went away) */
  cancelled?: () => boolean,
  extras: ChoiceExtras = {},
): Promise<ChoiceResult> {
  return runChoices(target, tokenizer, promptIds, stopIds, [{ params, onPiece, cancelled, extras }])[0];
}

/**
 * Every choice's result, once all have ended: the request's weights (its adapter lease) stay held
 * until its last row has left the batch, even when one choice fails (then its error is thrown).
 */
export async function allChoices<T>(pending: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(pending);
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}
