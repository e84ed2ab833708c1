// Decoding against KV caches (kv-cache.ts): the decoder stack and the LM head run over only the
// new tokens, which attend over what each cache holds, and the caches are extended in place (the
// old cache tensors are freed). One sequence with one pass set-up (forwardCached), or many
// sequences each with its own cache and adapter in one pass (forwardCachedRows, cached-rows.ts).

import * as tf from "@tensorflow/tfjs-core";
import { buildCachedAttentionBias } from "./attention-mask.js";
import { type CachedRow, planRows, type RowSpan, type RowsPass, type RowsPlan } from "./cached-rows.js";
import { biasPerWindow, type DecoderModel, type LayerPass } from "./decoder-model.js";
import type { KvCache } from "./kv-cache.js";
import { linear } from "./linear.js";
import type { Project } from "./projection-pass.js";

/** What decoding needs of a causal LM: the decoder stack and the LM head weight [V, D]. */
export interface DecodingParts {
  decoder: DecoderModel;
  lmHead: tf.Tensor2D;
}

/**
 * Feed `ids` (one sequence) after what the cache holds. Returns the logits of the last position
 * [1, V], or of every new position [ids.length, V] with `allPositions`.
 */
export function forwardCached(
  parts: DecodingParts,
  ids: ArrayLike<number>,
  cache: KvCache,
  pass: LayerPass,
  allPositions = false,
): tf.Tensor2D {
  const T = ids.length;
  if (T === 0) throw new Error("forwardCached: no ids given");
  const past = cache.length;
  const positions = Int32Array.from({ length: T }, (_, i) => past + i);
  const old = [...cache.keys, ...cache.values];
  const logits = tf.tidy(() => {
    const shape: [number, number, number, number] = [1, 1, T, past + T];
    const biasFor = biasPerWindow(parts.decoder.config, (window) =>
      tf.tensor4d(buildCachedAttentionBias(past, T, window), shape),
    );
    const tokens = { ids: Int32Array.from(ids), positionIds: positions, B: 1, T };
    const hidden = parts.decoder.hiddenStates(tokens, biasFor, pass, cache, !allPositions);
    const out = linear(hidden, parts.lmHead);
    for (const t of [...cache.keys, ...cache.values]) tf.keep(t);
    return out;
  });
  for (const t of old) t.dispose();
  cache.length = past + T;
  return logits;
}

/**
 * One forward pass over several sequences, each after what its own cache holds and with its own
 * adapter: the adapters are arguments of the pass, never mounted on the model, so concurrent
 * requests cannot see each other's weights. Returns the logits of each row's last position
 * [rows, V], or of every new position [Σ ids, V] with `allPositions`.
 */
export function forwardCachedRows(
  parts: DecodingParts,
  rows: readonly CachedRow[],
  options: { allPositions?: boolean } = {},
): tf.Tensor2D {
  const plan = planRows(rows);
  const old = rows.flatMap((row) => [...row.cache.keys, ...row.cache.values]);
  // a pass that throws leaves every cache as it was (its new tensors are freed by tidy)
  const before = rows.map((row) => ({ keys: [...row.cache.keys], values: [...row.cache.values] }));
  let logits: tf.Tensor2D;
  try {
    logits = tf.tidy(() => rowsLogits(parts, rows, plan, options));
  } catch (err) {
    rows.forEach((row, r) => {
      row.cache.keys = before[r].keys;
      row.cache.values = before[r].values;
    });
    throw err;
  }
  for (const t of old) t.dispose();
  rows.forEach((row, r) => {
    row.cache.length = plan.spans[r].past + plan.spans[r].length;
  });
  return logits;
}

function rowsLogits(
  { decoder, lmHead }: DecodingParts,
  rows: readonly CachedRow[],
  plan: RowsPlan,
  options: { allPositions?: boolean },
): tf.Tensor2D {
  const { spans, ids } = plan;
  const pass: RowsPass = {
    rows,
    spans,
    stepGroups: plan.stepGroups,
    ropes: spans.map((s) =>
      decoder.rotary.tables(
        Int32Array.from({ length: s.length }, (_, i) => s.past + i),
        1,
        s.length,
      ),
    ),
    biasFor: rowBiases(decoder, spans),
  };
  const adapters = rows.map((row) => row.adapter);
  const project: Project = (x, p) => p.forwardRows(x, adapters, spans);
  let x = decoder.embed(ids);
  for (const layer of decoder.layers) x = layer.forwardRows(x, pass, project);
  if (!options.allPositions) {
    x =
      rows.length === 1
        ? tf.slice(x, [ids.length - 1, 0], [1, -1])
        : tf.gather(
            x,
            tf.tensor1d(
              spans.map((s) => s.start + s.length - 1),
              "int32",
            ),
          );
  }
  const normed = decoder.norm.forward(x);
  for (const row of rows) for (const t of [...row.cache.keys, ...row.cache.values]) tf.keep(t);
  return linear(normed, lmHead);
}

/** Each row's attention bias per layer, one tensor per (past, length, window). */
function rowBiases(
  decoder: DecoderModel,
  spans: readonly RowSpan[],
): (r: number, layer: number) => tf.Tensor {
  const biasCache = new Map<string, tf.Tensor>();
  return (r, layer) => {
    const window = decoder.config.layerWindows[layer];
    const { past, length } = spans[r];
    const key = `${past},${length},${window}`;
    let bias = biasCache.get(key);
    if (!bias) {
      bias = tf.tensor4d(buildCachedAttentionBias(past, length, window), [1, 1, length, past + length]);
      biasCache.set(key, bias);
    }
    return bias;
  };
}
