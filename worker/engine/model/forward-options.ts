// What a caller asks of a CausalLM pass (ForwardOptions), and how that becomes the LayerPass the
// decoder stack runs: which adapter every projection applies, and the dropout seeds it draws.

import type { LoraAdapter } from "../lora/lora-adapter.js";
import type { LayerPass } from "./decoder-model.js";

export interface ForwardOptions {
  /** apply LoRA dropout (default false) */
  training?: boolean;
  /** run the base model only, as DPO's reference model does (default false) */
  disableAdapter?: boolean;
  /** the adapter to apply instead of the model's own (null = none); disableAdapter wins */
  adapter?: LoraAdapter | null;
}

export type PassOptions = ForwardOptions & { checkpoint?: boolean };

/**
 * The pass `options` ask for, over a model whose own adapter is `ownAdapter`; dropout seeds come
 * from `nextSeed` (the model's dropout stream), one per projection with a pair, as it runs.
 */
export function layerPass(
  options: PassOptions,
  ownAdapter: LoraAdapter | null,
  nextSeed: () => number,
): LayerPass {
  const adapter = options.disableAdapter
    ? null
    : options.adapter !== undefined
      ? options.adapter
      : ownAdapter;
  const dropout = options.training === true && (adapter?.settings.dropout ?? 0) > 0;
  return {
    adapter,
    checkpoint: options.checkpoint === true,
    dropoutSeed: (p) => (dropout && p.pairOf(adapter) ? nextSeed() : null),
  };
}
