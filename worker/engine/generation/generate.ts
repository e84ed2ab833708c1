// Text generation for chat completions: prefill the prompt once, then decode token by token
// with the model's KV cache. Greedy (temperature 0) or sampled (temperature, top_p) with a
// seeded RNG, so the same seed gives the same tokens. Before each choice the logits get OpenAI's
// frequency/presence penalties and logit_bias, then the caller's `processLogits` (masks of
// constrained decoding). Stops at any of `stopTokenIds` or after
// `maxNewTokens`. Every step reports the chosen token's log-probability and, when asked, the
// top alternatives (OpenAI's `logprobs` / `top_logprobs`), computed from the model's own
// distribution (before temperature and top_p, as OpenAI reports them).
//
//   const result = await generate(model, promptIds, { maxNewTokens: 64, temperature: 0.7,
//                                                     topP: 0.9, seed: 1, stopTokenIds: eos });
//   result.ids            new tokens, without the stop token
//   result.finishReason   "stop" (a stop id was produced) | "length"
//   result.tokens[i]      { id, logprob, topLogprobs? } for each new token (stop token included)

import type { LoraAdapter } from "../lora/lora-adapter.js";
import type { CausalLM } from "../model/causal-lm.js";
import { Rng } from "../train/rng.js";

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy; default 1 */
  temperature?: number;
  /** nucleus sampling mass in (0, 1]; default 1 */
  topP?: number;
  /** sampling seed; default 0 */
  seed?: number;
  stopTokenIds?: Iterable<number>;
  /** how many alternatives to report per token (0–20); default 0 */
  topLogprobs?: number;
  /** keep each step's raw logits in the result (tests, golden checks) */
  keepLogits?: boolean;
  /** called after every new token; return false to stop early (e.g. the client went away) */
  onToken?: (token: GeneratedToken) => boolean | undefined | Promise<boolean | undefined>;
  /** run the base model without its adapter */
  disableAdapter?: boolean;
  /** the LoRA adapter to decode with instead of the model's own (null = none) */
  adapter?: LoraAdapter | null;
  /** OpenAI's frequency_penalty (-2..2): minus penalty × times the token was generated so far */
  frequencyPenalty?: number;
  /** OpenAI's presence_penalty (-2..2): minus penalty once a token has been generated */
  presencePenalty?: number;
  /** OpenAI's logit_bias: added to the token's logit before choosing (-100 bans, 100 forces) */
  logitBias?: ReadonlyMap<number, number>;
  /**
   * Last say before a token is chosen (after penalties and bias): set a logit to -Infinity to
   * forbid that token (constrained decoding). `generated` are the new tokens so far.
   */
  processLogits?: (logits: Float32Array, generated: readonly number[]) => void;
}

/** The sampling options generate and the continuous batcher both refuse with a RangeError. */
export function checkGenerateOptions(options: GenerateOptions): void {
  const { maxNewTokens } = options;
  const temperature = options.temperature ?? 1;
  const topP = options.topP ?? 1;
  const topLogprobs = options.topLogprobs ?? 0;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1)
    throw new RangeError(`maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  if (!(temperature >= 0)) throw new RangeError(`temperature must be >= 0, got ${temperature}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`top_p must be in (0, 1], got ${topP}`);
  if (!(Number.isInteger(topLogprobs) && topLogprobs >= 0 && topLogprobs <= 20))
    throw new RangeError(`top_logprobs must be 0–20, got ${topLogprobs}`);
}

export interface TokenLogprob {
  id: number;
  logprob: number;
}

export interface GeneratedToken extends TokenLogprob {
  topLogprobs?: TokenLogprob[];
}

export interface GenerateResult {
  ids: number[];
  tokens: GeneratedToken[];
  finishReason: "stop" | "length";
  stepLogits?: Float32Array[];
}

/** log_softmax of one logits row, in float64 for stable sums. */
export function logSoftmax(logits: Float32Array): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (const x of logits) if (x > max) max = x;
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
  return out;
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** The k most likely ids, most likely first (ties: lower id first); O(V·k), no full sort. */
export function topK(logprobs: Float64Array, k: number): TokenLogprob[] {
  const best: TokenLogprob[] = [];
  if (k <= 0) return best;
  for (let id = 0; id < logprobs.length; id++) {
    const logprob = logprobs[id];
    if (best.length === k && logprob <= best[k - 1].logprob) continue;
    let at = best.length;
    while (at > 0 && best[at - 1].logprob < logprob) at--;
    best.splice(at, 0, { id, logprob });
    if (best.length > k) best.pop();
  }
  return best;
}

/**
 * Draw a token from logits with temperature and nucleus (top_p) filtering: keep the smallest set
 * of most likely tokens whose probability reaches top_p, renormalise, sample with `rng`.
 */
export function sampleToken(logits: Float32Array, temperature: number, topP: number, rng: Rng): number {
  const scaled = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) scaled[i] = logits[i] / temperature;
  const logp = logSoftmax(scaled);
  // top_p = 1 keeps everything: draw straight from the distribution, no sort over the vocabulary
  const order =
    topP >= 1 ? Array.from(logp.keys()) : Array.from(logp.keys()).sort((a, b) => logp[b] - logp[a] || a - b);
  const kept: number[] = [];
  let mass = 0;
  for (const id of order) {
    kept.push(id);
    mass += Math.exp(logp[id]);
    if (mass >= topP) break;
  }
  let r = rng.nextFloat() * mass;
  for (const id of kept) {
    r -= Math.exp(logp[id]);
    if (r < 0) return id;
  }
  return kept[kept.length - 1];
}

/**
 * The logits a token is chosen from: the model's, with OpenAI's penalties over the tokens generated
 * so far (`counts`: id → times generated) and the caller's biases. Returns `logits` itself when
 * nothing applies.
 */
export function adjustLogits(
  logits: Float32Array,
  counts: ReadonlyMap<number, number>,
  frequencyPenalty: number,
  presencePenalty: number,
  logitBias: ReadonlyMap<number, number> | undefined,
): Float32Array {
  const penalise = (frequencyPenalty !== 0 || presencePenalty !== 0) && counts.size > 0;
  if (!penalise && !logitBias?.size) return logits;
  const out = new Float32Array(logits);
  if (penalise)
    for (const [id, n] of counts) if (id < out.length) out[id] -= n * frequencyPenalty + presencePenalty;
  if (logitBias) for (const [id, bias] of logitBias) if (id < out.length) out[id] += bias;
  return out;
}

/** Logits [V] at the last prompt position: the distribution of the next token. */
export async function nextTokenLogits(
  model: CausalLM,
  promptIds: ArrayLike<number>,
  disableAdapter = false,
): Promise<Float32Array> {
  const cache = model.newCache();
  try {
    const logits = model.forwardCached(promptIds, cache, { disableAdapter });
    const data = (await logits.data()) as Float32Array;
    logits.dispose();
    return data;
  } finally {
    model.disposeCache(cache);
  }
}

export async function generate(
  model: CausalLM,
  promptIds: ArrayLike<number>,
  options: GenerateOptions,
): Promise<GenerateResult> {
  const { maxNewTokens } = options;
  const temperature = options.temperature ?? 1;
  const topP = options.topP ?? 1;
  const topLogprobs = options.topLogprobs ?? 0;
  if (promptIds.length === 0) throw new Error("generate: the prompt is empty");
  checkGenerateOptions(options);
  const maxPositions = model.config.maxPositionEmbeddings;
  if (promptIds.length >= maxPositions)
    throw new RangeError(`prompt has ${promptIds.length} tokens; the model allows ${maxPositions} positions`);
  const steps = Math.min(maxNewTokens, maxPositions - promptIds.length);
  const stop = new Set(options.stopTokenIds ?? []);
  const rng = Rng.fromSeed(options.seed ?? 0);
  const forward = { disableAdapter: options.disableAdapter, adapter: options.adapter };
  const counts = new Map<number, number>();
  const frequencyPenalty = options.frequencyPenalty ?? 0;
  const presencePenalty = options.presencePenalty ?? 0;

  const cache = model.newCache();
  const result: GenerateResult = {
    ids: [],
    tokens: [],
    finishReason: "length",
    stepLogits: options.keepLogits ? [] : undefined,
  };
  try {
    let input: ArrayLike<number> = promptIds;
    for (let step = 0; step < steps; step++) {
      const next = model.forwardCached(input, cache, forward);
      const logits = (await next.data()) as Float32Array;
      next.dispose();
      result.stepLogits?.push(logits);
      let choose = adjustLogits(logits, counts, frequencyPenalty, presencePenalty, options.logitBias);
      if (options.processLogits) {
        if (choose === logits) choose = new Float32Array(logits);
        options.processLogits(choose, result.ids);
      }
      const id = temperature === 0 ? argmax(choose) : sampleToken(choose, temperature, topP, rng);
      counts.set(id, (counts.get(id) ?? 0) + 1);
      // logprobs are the model's own distribution (before penalties, bias and masks), as reported
      const logp = logSoftmax(logits);
      const token: GeneratedToken = { id, logprob: logp[id] };
      if (topLogprobs > 0) token.topLogprobs = topK(logp, topLogprobs);
      result.tokens.push(token);
      if (stop.has(id)) {
        result.finishReason = "stop";
        break;
      }
      result.ids.push(id);
      if ((await options.onToken?.(token)) === false) break;
      input = [id];
    }
  } finally {
    model.disposeCache(cache);
  }
  return result;
}
