// A causal LM's base weights on the device, as a state dict by HF name: every weight config.json
// implies, shape-checked on upload; under full fine-tuning each is a trainable variable.

import * as tf from "@tensorflow/tfjs-core";
import { expectedWeightShapes } from "../hf/checkpoint-layout.js";
import type { ModelConfig } from "../hf/config.js";
import type { FloatTensorData } from "../hf/safetensors.js";
import type { LoraLinear } from "../lora/lora-layer.js";
import { uniqueVariableName } from "./unique-variable-name.js";

export class ModelWeights {
  private constructor(
    private readonly byName: Map<string, tf.Tensor>,
    readonly fullFinetune: boolean,
  ) {}

  /** Upload `host`; entries are removed from it as they are uploaded (the host copy is released at once). */
  static upload(
    config: ModelConfig,
    host: Map<string, FloatTensorData>,
    options: { folder: string; fullFinetune: boolean },
  ): ModelWeights {
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
    return new ModelWeights(weights, options.fullFinetune);
  }

  /** The weight named `name`, if the checkpoint has it. */
  get(name: string): tf.Tensor | undefined {
    return this.byName.get(name);
  }

  /** The weight named `name`; throws when there is none. */
  weight(name: string): tf.Tensor {
    const t = this.byName.get(name);
    if (!t) throw new Error(`no weight named "${name}"`);
    return t;
  }

  /** Names in HF state-dict order (a tied head absent). */
  names(): string[] {
    return [...this.byName.keys()];
  }

  entries(): IterableIterator<[string, tf.Tensor]> {
    return this.byName.entries();
  }

  /** Unique parameter count (tied weights once). */
  numParameters(): number {
    let n = 0;
    for (const t of this.byName.values()) n += t.size;
    return n;
  }

  /**
   * Replace projection `p`'s weight with `value` (same shape); the old tensor is freed (under full
   * fine-tuning the variable takes the new value).
   */
  replaceProjection(p: LoraLinear, value: tf.Tensor2D): void {
    if (value.shape.join(",") !== p.weight.shape.join(","))
      throw new Error(`${p.name}: new weight [${value.shape}] differs from [${p.weight.shape}]`);
    if (this.fullFinetune) {
      // the weight is the trained variable itself: keep it, change its value
      (p.weight as unknown as tf.Variable).assign(value);
      value.dispose();
      return;
    }
    p.weight.dispose();
    p.weight = value;
    this.byName.set(`${p.name}.weight`, value);
  }

  dispose(): void {
    for (const t of this.byName.values()) t.dispose();
    this.byName.clear();
  }
}
