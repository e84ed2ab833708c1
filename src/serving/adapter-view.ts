// One base model, many adapters: a view of a shared CausalLM whose forwardCached runs with one
// particular adapter (or none), passed to the engine as an explicit argument of the forward pass
// (forwardCachedRows): nothing is mounted on the shared model, so requests for different adapters
// can interleave token by token without ever seeing each other's weights. Chat serving decodes
// through the continuous batcher, which gives every row its adapter the same way; the view is for
// code that wants an ordinary CausalLM (generate(), benchmarks, tests).
//
//   const view = adapterView(base, adapter);       // adapter: ServedAdapter | null
//   await generate(view, promptIds, options);       // generate() sees an ordinary CausalLM

import type * as tf from "@tensorflow/tfjs-core";
import type { CausalLM, ForwardOptions, KvCache } from "../../worker/engine/model/decoder.js";
import type { ServedAdapter } from "./served-adapter.js";

/**
 * A CausalLM whose forwardCached runs with `adapter` (null = the plain base model). Everything
 * else (config, caches, weights) is the base model's, through the prototype chain: no weights are
 * copied.
 */
export function adapterView(base: CausalLM, adapter: ServedAdapter | null): CausalLM {
  const view = Object.create(base) as CausalLM;
  view.forwardCached = (
    ids: ArrayLike<number>,
    cache: KvCache,
    options: ForwardOptions & { allPositions?: boolean } = {},
  ): tf.Tensor2D =>
    base.forwardCachedRows([{ ids, cache, adapter: options.disableAdapter ? null : adapter }], {
      allPositions: options.allPositions,
    });
  return view;
}
