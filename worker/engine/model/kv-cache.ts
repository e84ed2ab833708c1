// The key/value cache of one sequence being decoded: per layer, the keys (RoPE applied) and values
// of every position fed so far, so each new token attends over them without recomputing them.

import type * as tf from "@tensorflow/tfjs-core";

export interface KvCache {
  keys: tf.Tensor4D[]; // per layer [1, Hkv, length, dh], RoPE applied
  values: tf.Tensor4D[];
  length: number;
}

/** One layer's entry of a cache: what it holds (null before the first pass) and how to replace it. */
export interface CacheSlot {
  keys: tf.Tensor4D | null;
  values: tf.Tensor4D | null;
  store: (k: tf.Tensor4D, v: tf.Tensor4D) => void;
}

export function newKvCache(): KvCache {
  return { keys: [], values: [], length: 0 };
}

export function disposeKvCache(cache: KvCache): void {
  for (const t of [...cache.keys, ...cache.values]) t.dispose();
  cache.keys = [];
  cache.values = [];
  cache.length = 0;
}

export function cacheSlot(cache: KvCache, layer: number): CacheSlot {
  return {
    keys: cache.keys[layer] ?? null,
    values: cache.values[layer] ?? null,
    store: (k: tf.Tensor4D, v: tf.Tensor4D) => {
      cache.keys[layer] = k;
      cache.values[layer] = v;
    },
  };
}
