// A model's trainable variables as host data and back: what a checkpoint stores of the weights.

import * as tf from "@tensorflow/tfjs-core";
import type { TensorData } from "./checkpoint-state.js";

export function readVariables(variables: Map<string, tf.Variable>): Map<string, TensorData> {
  const out = new Map<string, TensorData>();
  for (const [name, v] of variables)
    out.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
  return out;
}

/** Assigns every variable its saved value; the names and shapes must match exactly. */
export function writeVariables(variables: Map<string, tf.Variable>, weights: Map<string, TensorData>): void {
  for (const [name, v] of variables) {
    const saved = weights.get(name);
    if (!saved) throw new Error(`checkpoint has no weights for variable "${name}"`);
    if (saved.shape.join(",") !== v.shape.join(",")) {
      throw new Error(`checkpoint weights "${name}" have shape [${saved.shape}], the model has [${v.shape}]`);
    }
    tf.tidy(() => v.assign(tf.tensor(saved.data, saved.shape)));
  }
  for (const name of weights.keys()) {
    if (!variables.has(name))
      throw new Error(`checkpoint has weights "${name}" that the model does not train`);
  }
}
