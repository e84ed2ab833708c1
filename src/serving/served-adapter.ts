// A LoRA adapter held in memory for serving: its PEFT settings and one (A, B) pair per adapted
// projection of a base model, kept apart from the base model itself so that any number of
// adapters can share one copy of the base weights (the forward pass takes the adapter of each row).
//
// Read with the engine's adapter I/O (readAdapterFolder, PEFT tensor names): the
// same folders the worker writes and PEFT/vLLM read. Unlike CausalLM.loadAdapter, nothing is
// attached to the shared model while reading.

import * as tf from "@tensorflow/tfjs-core";
import { readAdapterFolder } from "../../worker/engine/lora/adapter-io.js";
import { type LoraPair, type LoraSettings, uniqueVariableName } from "../../worker/engine/lora/lora.js";
import { type CausalLM, peftTensorName } from "../../worker/engine/model/decoder.js";

export interface ServedAdapter {
  settings: LoraSettings;
  /** projection module path (model.layers.0.self_attn.q_proj) → its pair */
  pairs: Map<string, LoraPair>;
  /** bytes of tfjs memory the pairs hold */
  bytes: number;
  dispose(): void;
}

/** A non-trainable variable (LoraPair's type) owning its data: the staging tensor is freed. */
function frozenVariable(data: Float32Array, shape: number[], name: string): tf.Variable {
  const staging = tf.tensor2d(data, shape as [number, number]);
  const variable = tf.variable(staging, false, uniqueVariableName(name));
  staging.dispose();
  return variable;
}

/** Read a PEFT adapter folder for `model`: every tensor must match an adapted projection's shape. */
export async function readServedAdapter(model: CausalLM, dir: string): Promise<ServedAdapter> {
  const { settings, weightsFile, tensors } = await readAdapterFolder(dir);

  const expected = new Map<string, { module: string; side: "A" | "B"; shape: number[] }>();
  for (const p of model.projections()) {
    if (!settings.targetModules.includes(p.kind)) continue;
    const [out, inF] = p.weight.shape;
    expected.set(peftTensorName(p.name, "A"), { module: p.name, side: "A", shape: [settings.r, inF] });
    expected.set(peftTensorName(p.name, "B"), { module: p.name, side: "B", shape: [out, settings.r] });
  }
  for (const name of tensors.keys()) {
    if (!expected.has(name))
      throw new Error(`${weightsFile}: tensor "${name}" does not belong to a LoRA target of this model`);
  }
  for (const [name, want] of expected) {
    const t = tensors.get(name);
    if (!t) throw new Error(`${weightsFile}: missing tensor "${name}"`);
    if (t.shape.length !== 2 || t.shape[0] !== want.shape[0] || t.shape[1] !== want.shape[1])
      throw new Error(
        `${weightsFile}: tensor "${name}" has shape [${t.shape}], the model needs [${want.shape}]`,
      );
  }

  const pairs = new Map<string, LoraPair>();
  let bytes = 0;
  for (const [name, want] of expected) {
    if (want.side !== "A") continue;
    const a = tensors.get(name)!;
    const b = tensors.get(peftTensorName(want.module, "B"))!;
    pairs.set(want.module, {
      a: frozenVariable(a.data, a.shape, name),
      b: frozenVariable(b.data, b.shape, peftTensorName(want.module, "B")),
    });
    bytes += (a.data.length + b.data.length) * 4;
  }
  tensors.clear();
  let disposed = false;
  return {
    settings,
    pairs,
    bytes,
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const pair of pairs.values()) {
        pair.a.dispose();
        pair.b.dispose();
      }
    },
  };
}
