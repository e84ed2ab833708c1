// A checkpoint's host weights onto the device, as a state dict by HF name: every weight
// config.json implies, shape-checked; under full fine-tuning each becomes a trainable variable.

import * as tf from "@tensorflow/tfjs-core";
import { expectedWeightShapes } from "../hf/checkpoint-layout.js";
import type { ModelConfig } from "../hf/config.js";
import type { FloatTensorData } from "../hf/safetensors.js";
import { uniqueVariableName } from "./unique-variable-name.js";

/** Entries are removed from `host` as they are uploaded (the host copy is released at once). */
export function uploadWeights(
  config: ModelConfig,
  host: Map<string, FloatTensorData>,
  options: { folder: string; fullFinetune: boolean },
): Map<string, tf.Tensor> {
  const weights = new Map<string, tf.Tensor>();
  for (const [name, shape] of expectedWeightShapes(config)) {
    const t = host.get(name);
    if (!t) throw new Error(`${options.folder}: missing weight "${name}" (expected shape [${shape}])`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(
        `${options.folder}: weight "${name}" has shape [${t.shape}], config.json implies [${shape}]`,
      );
    }
    const tensor = tf.tensor(t.data, shape, "float32");
    host.delete(name);
    if (options.fullFinetune) {
      weights.set(name, tf.variable(tensor, true, uniqueVariableName(name)));
      tensor.dispose();
    } else {
      weights.set(name, tensor);
    }
  }
  return weights;
}
