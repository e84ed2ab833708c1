// One base model, many adapters: a view of a shared CausalLM that runs every forward pass with
// one particular adapter (or none). The engine keeps LoRA pairs on the model's projections; the
// view puts its adapter's pairs there for the duration of one synchronous forwardCached call and
// puts back what was there, so requests for different adapters can interleave token by token
// (generation awaits between tokens) without ever seeing each other's weights.
//
//   const view = adapterView(base, adapter);       // adapter: ServedAdapter | null
//   await generate(view, promptIds, options);       // generate() sees an ordinary CausalLM

import type { CausalLM, ForwardOptions, KvCache } from "../../worker/engine/model/decoder.js";
import type { LoraPair, LoraSettings } from "../../worker/engine/model/lora.js";
import type * as tf from "@tensorflow/tfjs-core";
import type { ServedAdapter } from "./served-adapter.js";

type Projection = ReturnType<CausalLM["projections"]>[number];

const projectionLists = new WeakMap<CausalLM, Projection[]>();

function projectionsOf(model: CausalLM): Projection[] {
  let list = projectionLists.get(model);
  if (!list) {
    list = model.projections();
    projectionLists.set(model, list);
  }
  return list;
}

/** Run `fn` with `adapter` mounted on `model` (null = plain base model); restores the previous state. */
export function withMountedAdapter<T>(model: CausalLM, adapter: ServedAdapter | null, fn: () => T): T {
  const projections = projectionsOf(model);
  const saved: (LoraPair | undefined)[] = projections.map((p) => p.lora);
  const savedSettings: LoraSettings | null = model.loraSettings;
  try {
    for (const p of projections) p.lora = adapter?.pairs.get(p.name);
    model.loraSettings = adapter?.settings ?? null;
    const result = fn();
    if (result instanceof Promise) throw new Error("withMountedAdapter: fn must be synchronous");
    return result;
  } finally {
    projections.forEach((p, i) => {
      p.lora = saved[i];
    });
    model.loraSettings = savedSettings;
  }
}

/**
 * A CausalLM whose forwardCached runs with `adapter` mounted. Everything else (config, caches,
 * weights) is the base model's, through the prototype chain: no weights are copied.
 */
export function adapterView(base: CausalLM, adapter: ServedAdapter | null): CausalLM {
  const view = Object.create(base) as CausalLM;
  view.forwardCached = (
    ids: ArrayLike<number>,
    cache: KvCache,
    options: ForwardOptions & { allPositions?: boolean } = {},
  ): tf.Tensor2D => withMountedAdapter(base, adapter, () => base.forwardCached(ids, cache, options));
  return view;
}
