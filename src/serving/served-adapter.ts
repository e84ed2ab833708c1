// A LoRA adapter held in memory for serving: the engine's LoraAdapter (its PEFT settings and one
// (A, B) pair per adapted projection) read for one base model, kept apart from the base model so
// that any number of adapters share one copy of the base weights. Requests pass it to the engine
// with each row they decode (CachedRow.adapter, generate's `adapter`); nothing is mounted on the
// shared model.
//
// Read with the engine's adapter I/O (readAdapter, PEFT tensor names): the same folders the worker
// writes and PEFT/vLLM read.

import { readAdapter } from "../../worker/engine/lora/adapter-io.js";
import { adapterBytes, disposeAdapter, type LoraAdapter } from "../../worker/engine/lora/lora-adapter.js";
import type { CausalLM } from "../../worker/engine/model/causal-lm.js";

export interface ServedAdapter extends LoraAdapter {
  /** bytes of tfjs memory the pairs hold */
  bytes: number;
  dispose(): void;
}

/**
 * Read a PEFT adapter folder for `model` (every tensor must match an adapted projection's shape),
 * named `name` (what identifies its weights).
 */
export async function readServedAdapter(model: CausalLM, dir: string, name = dir): Promise<ServedAdapter> {
  const adapter = await readAdapter(model.projections(), dir, { name, trainable: false });
  let disposed = false;
  return {
    ...adapter,
    bytes: adapterBytes(adapter),
    dispose() {
      if (disposed) return;
      disposed = true;
      disposeAdapter(adapter);
    },
  };
}
