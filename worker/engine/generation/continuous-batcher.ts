// Continuous batching for one model: every sequence being decoded on it, whatever its request or
// LoRA adapter, advances in one forward pass per step (model.forwardCachedRows). A request
// prefills its prompt once, then its choices (n > 1) join the running batch as rows at the next
// step, each with its own KV cache copy, sampler, penalties and constraint; a row leaves when it
// stops, when its onToken says so (the client went away), or when its own code throws — which
// fails that row's promise only. Each row chooses its tokens exactly as generate() does, and
// draws from its own seeded RNG, so what a row produces does not depend on its neighbours.
//
//   const batcher = new ContinuousBatcher(model);
//   const [a, b] = batcher.generate(promptIds, adapter, [optionsA, optionsB]);  // GenerateResult promises

import type * as tf from "@tensorflow/tfjs-core";
import type { LoraAdapter } from "../lora/lora-adapter.js";
import type { CausalLM } from "../model/causal-lm.js";
import type { KvCache } from "../model/kv-cache.js";
import { Rng } from "../train/rng.js";
import {
  adjustLogits,
  argmax,
  checkGenerateOptions,
  type GeneratedToken,
  type GenerateOptions,
  type GenerateResult,
  logSoftmax,
  sampleToken,
  topK,
} from "./generate.js";

interface Row {
  options: GenerateOptions;
  adapter: LoraAdapter | null;
  cache: KvCache;
  steps: number;
  stop: Set<number>;
  rng: Rng;
  counts: Map<number, number>;
  result: GenerateResult;
  /** the token to feed at the next step */
  next: number;
  done: boolean;
  resolve: (r: GenerateResult) => void;
  reject: (err: unknown) => void;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class ContinuousBatcher {
  private active: Row[] = [];
  private running = false;
  /** rows admitted (prefilling or decoding): each holds a KV cache */
  private held = 0;
  private waiting: (() => void)[] = [];
  /** forward passes run by the decoding loop, rows they carried, the most in one (tests, benchmarks) */
  readonly stats = { steps: 0, rows: 0, widest: 0 };

  /**
   * `maxRows` bounds the rows decoding at once (and so the KV caches held): a request that would
   * exceed it waits for rows to leave; one larger than the bound runs once the batch is empty.
   */
  constructor(
    readonly model: CausalLM,
    readonly maxRows = 32,
  ) {}

  private async admit(rows: number): Promise<void> {
    while (this.held > 0 && this.held + rows > this.maxRows)
      await new Promise<void>((r) => this.waiting.push(r));
    this.held += rows;
  }

  private releaseRow(): void {
    this.held--;
    const wake = this.waiting;
    this.waiting = [];
    for (const w of wake) w();
  }

  /**
   * Prefill `promptIds` once with `adapter`, then decode one row per entry of `choices` in the
   * shared batch. One promise per choice; a choice's failure rejects only its own promise.
   */
  generate(
    promptIds: ArrayLike<number>,
    adapter: LoraAdapter | null,
    choices: readonly GenerateOptions[],
  ): Promise<GenerateResult>[] {
    const settled = choices.map(() => {
      let resolve!: (r: GenerateResult) => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<GenerateResult>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    });
    this.start(promptIds, adapter, choices, settled).catch((err) => {
      for (const s of settled) s.reject(err);
    });
    return settled.map((s) => s.promise);
  }

  private async start(
    promptIds: ArrayLike<number>,
    adapter: LoraAdapter | null,
    choices: readonly GenerateOptions[],
    settled: { resolve: (r: GenerateResult) => void; reject: (err: unknown) => void }[],
  ): Promise<void> {
    if (promptIds.length === 0) throw new Error("generate: the prompt is empty");
    for (const options of choices) checkGenerateOptions(options);
    const maxPositions = this.model.config.maxPositionEmbeddings;
    if (promptIds.length >= maxPositions)
      throw new RangeError(
        `prompt has ${promptIds.length} tokens; the model allows ${maxPositions} positions`,
      );
    if (choices.length === 0) return;

    await this.admit(choices.length);
    const cache = this.model.newCache();
    let logits: Float32Array;
    try {
      const out = this.model.forwardCachedRows([{ ids: promptIds, cache, adapter }]);
      logits = (await out.data()) as Float32Array;
      out.dispose();
    } catch (err) {
      this.model.disposeCache(cache);
      for (const _ of choices) this.releaseRow();
      throw err;
    }
    const rows = choices.map((options, i): Row => {
      // every choice continues from the same prompt: its own copy of the cache (shared storage)
      const own: KvCache =
        i === 0
          ? cache
          : {
              keys: cache.keys.map((t) => t.clone() as tf.Tensor4D),
              values: cache.values.map((t) => t.clone() as tf.Tensor4D),
              length: cache.length,
            };
      return {
        options,
        adapter,
        cache: own,
        steps: Math.min(options.maxNewTokens, maxPositions - promptIds.length),
        stop: new Set(options.stopTokenIds ?? []),
        rng: Rng.fromSeed(options.seed ?? 0),
        counts: new Map(),
        result: {
          ids: [],
          tokens: [],
          finishReason: "length",
          stepLogits: options.keepLogits ? [] : undefined,
        },
        next: -1,
        done: false,
        resolve: settled[i].resolve,
        reject: settled[i].reject,
      };
    });
    await Promise.all(rows.map((row) => this.accept(row, logits)));
    for (const row of rows) if (!row.done) this.active.push(row);
    if (!this.running && this.active.length > 0) {
      this.running = true;
      void this.loop();
    }
  }

  /** The decoding loop: one forward for every active row per step, until no row is left. */
  private async loop(): Promise<void> {
    try {
      while (this.active.length > 0) {
        // neighbours with the same adapter share one LoRA product per projection
        const rows = groupByAdapter(this.active);
        const logits = await this.forwardRows(rows);
        this.stats.steps++;
        this.stats.rows += rows.length;
        this.stats.widest = Math.max(this.stats.widest, rows.length);
        await Promise.all(rows.map((row, r) => (logits[r] ? this.accept(row, logits[r]) : undefined)));
        this.active = this.active.filter((row) => !row.done);
        // let sockets, disconnects and new requests in between steps
        await yieldToEventLoop();
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * Next-token logits per row, in one forward pass. Should that pass throw, each row is run
   * alone so that only the rows at fault fail (their entry is null).
   */
  private async forwardRows(rows: Row[]): Promise<(Float32Array | null)[]> {
    const V = this.model.config.vocabSize;
    const run = async (batch: Row[]) => {
      const out = this.model.forwardCachedRows(
        batch.map((row) => ({ ids: [row.next], cache: row.cache, adapter: row.adapter })),
      );
      const data = (await out.data()) as Float32Array;
      out.dispose();
      // views, not copies: a row's logits are only read (adjustLogits and masks work on copies)
      return batch.map((_, r) => data.subarray(r * V, (r + 1) * V));
    };
    try {
      return await run(rows);
    } catch {
      const each: (Float32Array | null)[] = [];
      for (const row of rows) {
        try {
          each.push((await run([row]))[0]);
        } catch (err) {
          this.fail(row, err);
          each.push(null);
        }
      }
      return each;
    }
  }

  /** Choose a row's next token from `logits` (as generate() does) and report it. */
  private async accept(row: Row, logits: Float32Array): Promise<void> {
    try {
      const { options, result } = row;
      const temperature = options.temperature ?? 1;
      result.stepLogits?.push(logits);
      let choose = adjustLogits(
        logits,
        row.counts,
        options.frequencyPenalty ?? 0,
        options.presencePenalty ?? 0,
        options.logitBias,
      );
      if (options.processLogits) {
        if (choose === logits) choose = new Float32Array(logits);
        options.processLogits(choose, result.ids);
      }
      const id =
        temperature === 0 ? argmax(choose) : sampleToken(choose, temperature, options.topP ?? 1, row.rng);
      row.counts.set(id, (row.counts.get(id) ?? 0) + 1);
      // logprobs are the model's own distribution (before penalties, bias and masks), as reported;
      // the full log_softmax row only when alternatives are asked for
      const topLogprobs = options.topLogprobs ?? 0;
      const logp = topLogprobs > 0 ? logSoftmax(logits) : null;
      const token: GeneratedToken = { id, logprob: logp ? logp[id] : logits[id] - logSumExp(logits) };
      if (logp) token.topLogprobs = topK(logp, topLogprobs);
      result.tokens.push(token);
      if (row.stop.has(id)) {
        result.finishReason = "stop";
        return this.finish(row);
      }
      result.ids.push(id);
      if ((await options.onToken?.(token)) === false || result.tokens.length >= row.steps)
        return this.finish(row);
      row.next = id;
    } catch (err) {
      this.fail(row, err);
    }
  }

  private finish(row: Row): void {
    if (row.done) return;
    row.done = true;
    this.model.disposeCache(row.cache);
    this.releaseRow();
    row.resolve(row.result);
  }

  private fail(row: Row, err: unknown): void {
    if (row.done) return;
    row.done = true;
    this.model.disposeCache(row.cache);
    this.releaseRow();
    row.reject(err);
  }
}

/** log Σ exp(logits), computed as logSoftmax computes it (the same float64 value). */
function logSumExp(logits: Float32Array): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const x of logits) if (x > max) max = x;
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  return max + Math.log(sum);
}

/** Rows reordered so that rows with the same adapter sit together (stable within a group). */
function groupByAdapter(rows: readonly Row[]): Row[] {
  const groups = new Map<LoraAdapter | null, Row[]>();
  for (const row of rows) {
    const group = groups.get(row.adapter);
    if (group) group.push(row);
    else groups.set(row.adapter, [row]);
  }
  return [...groups.values()].flat();
}

const batchers = new WeakMap<CausalLM, ContinuousBatcher>();

/** The one batcher of a model: every request decoding on the model shares its batch. */
export function batcherFor(model: CausalLM): ContinuousBatcher {
  let batcher = batchers.get(model);
  if (!batcher) {
    batcher = new ContinuousBatcher(model);
    batchers.set(model, batcher);
  }
  return batcher;
}
