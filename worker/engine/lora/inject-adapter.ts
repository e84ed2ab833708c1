// A fresh adapter on a model's target projections, as PEFT's inject_adapter + reset_lora_parameters
// make one: A ~ U(-1/√in, 1/√in) (kaiming-uniform with a = √5, torch's nn.Linear default), B = 0,
// so an untrained adapter leaves the model unchanged.

import * as tf from "@tensorflow/tfjs-core";
import { uniqueVariableName } from "../model/unique-variable-name.js";
import type { Rng } from "../train/rng.js";
import type { LoraAdapter, LoraPair } from "./lora-adapter.js";
import type { LoraSettings } from "./lora-config.js";
import type { LoraLinear } from "./lora-layer.js";

/** A trainable pair for one linear layer, A drawn from `rng`. */
export function initLoraPair(
  inFeatures: number,
  outFeatures: number,
  r: number,
  rng: Rng,
  name: string,
): LoraPair {
  const bound = 1 / Math.sqrt(inFeatures);
  const aValues = new Float32Array(r * inFeatures);
  for (let i = 0; i < aValues.length; i++) aValues[i] = (rng.nextFloat() * 2 - 1) * bound;
  return {
    a: tf.variable(tf.tensor2d(aValues, [r, inFeatures]), true, uniqueVariableName(`${name}.lora_A.weight`)),
    b: tf.variable(tf.zeros([outFeatures, r]), true, uniqueVariableName(`${name}.lora_B.weight`)),
  };
}

/** A new adapter with a pair on every projection whose kind `settings` targets, in layer order. */
export function injectAdapter(
  projections: readonly LoraLinear[],
  settings: LoraSettings,
  rng: Rng,
  name = "default",
): LoraAdapter {
  const pairs = new Map<string, LoraPair>();
  for (const p of projections) {
    if (!settings.targetModules.includes(p.kind)) continue;
    const [out, inF] = p.weight.shape;
    pairs.set(p.name, initLoraPair(inF, out, settings.r, rng, p.name));
  }
  return { name, settings, pairs };
}
