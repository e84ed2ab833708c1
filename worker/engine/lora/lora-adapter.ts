// One LoRA adapter, held apart from the base model it adapts: its name, its settings and one
// (lora_A, lora_B) pair per adapted projection, keyed by module path
// (model.layers.0.self_attn.q_proj), as PEFT's LoraLayer keeps lora_A[adapter_name] per module.
// The model a forward pass runs on is told which adapter to apply (or none); the same base weights
// serve any number of adapters.

import type * as tf from "@tensorflow/tfjs-core";
import type { LoraSettings } from "./lora-config.js";

/** One LoRA pair on one linear layer: A [r, in], B [out, r]. */
export interface LoraPair {
  a: tf.Variable;
  b: tf.Variable;
}

export interface LoraAdapter {
  /** "default" for the adapter a model trains; serving names adapters by their weights' key */
  name: string;
  settings: LoraSettings;
  /** projection module path → its pair, in the model's projection order */
  pairs: ReadonlyMap<string, LoraPair>;
}

/** PEFT's tensor name for one side of a LoRA pair. */
export function peftTensorName(moduleName: string, side: "A" | "B"): string {
  return `base_model.model.${moduleName}.lora_${side}.weight`;
}

/** The adapter's tensors under PEFT's names (A then B per module, in projection order). */
export function adapterStateDict(adapter: LoraAdapter): Map<string, tf.Variable> {
  const named = new Map<string, tf.Variable>();
  for (const [module, pair] of adapter.pairs) {
    named.set(peftTensorName(module, "A"), pair.a);
    named.set(peftTensorName(module, "B"), pair.b);
  }
  return named;
}

/** Bytes of tensor memory the adapter's pairs hold. */
export function adapterBytes(adapter: LoraAdapter): number {
  let bytes = 0;
  for (const pair of adapter.pairs.values()) bytes += (pair.a.size + pair.b.size) * 4;
  return bytes;
}

export function disposeAdapter(adapter: LoraAdapter): void {
  for (const pair of adapter.pairs.values()) {
    pair.a.dispose();
    pair.b.dispose();
  }
}
