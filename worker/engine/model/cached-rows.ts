// A batch of independent sequences decoded in one forward pass, each after what its own KV cache
// holds and with its own LoRA adapter (or none): the linear layers and the LM head run once over
// all rows' tokens, attention runs per row against that row's cache, and rows that feed one token
// at the same position share one attention over their caches stacked.

import type * as tf from "@tensorflow/tfjs-core";
import type { LoraAdapter } from "../lora/lora-adapter.js";
import type { KvCache } from "./kv-cache.js";
import type { RopeTensors } from "./rotary-embedding.js";

/** One sequence of a batched cached forward. */
export interface CachedRow {
  /** the new tokens of this sequence (the prompt at prefill, one token per decoding step) */
  ids: ArrayLike<number>;
  cache: KvCache;
  /** the adapter for this row; null = the base weights alone (the model's own adapter is not used) */
  adapter: LoraAdapter | null;
}

/** Where a row's new tokens sit in the flat batch, and how many positions its cache holds. */
export interface RowSpan {
  start: number;
  length: number;
  past: number;
}

export interface RowsPlan {
  spans: RowSpan[];
  /** every row's new ids, concatenated */
  ids: Int32Array;
  /** groups of rows that share one attention (a lone row is a group of one), in batch order */
  stepGroups: number[][];
}

/** What the layers need of a planned batch while it runs. */
export interface RowsPass {
  rows: readonly CachedRow[];
  spans: readonly RowSpan[];
  stepGroups: readonly number[][];
  ropes: readonly RopeTensors[];
  /** row r's attention bias at `layer` (shared between rows with the same shape) */
  biasFor: (r: number, layer: number) => tf.Tensor;
}

export function planRows(rows: readonly CachedRow[]): RowsPlan {
  if (rows.length === 0) throw new Error("forwardCachedRows: no rows given");
  const spans: RowSpan[] = [];
  let total = 0;
  for (const row of rows) {
    if (row.ids.length === 0) throw new Error("forwardCachedRows: a row has no ids");
    spans.push({ start: total, length: row.ids.length, past: row.cache.length });
    total += row.ids.length;
  }
  const ids = new Int32Array(total);
  rows.forEach((row, r) => {
    ids.set(Array.from(row.ids), spans[r].start);
  });
  return { spans, ids, stepGroups: stepGroups(spans) };
}

/** Rows that feed one token at the same position (n choices of a prompt, equal-length requests). */
function stepGroups(spans: readonly RowSpan[]): number[][] {
  const groups: number[][] = [];
  const byPosition = new Map<number, number[]>();
  spans.forEach((s, r) => {
    const group = s.length === 1 && s.past > 0 ? byPosition.get(s.past) : undefined;
    if (group) group.push(r);
    else {
      const fresh = [r];
      groups.push(fresh);
      if (s.length === 1 && s.past > 0) byPosition.set(s.past, fresh);
    }
  });
  return groups;
}
