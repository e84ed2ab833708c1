// LoRA (Hu et al. 2021) as PEFT implements it for nn.Linear:
//   y = x Wᵀ (+ b) + scaling · (dropout(x) Aᵀ) Bᵀ,   A [r, in], B [out, r], scaling = alpha / r
// (alpha / √r with rsLoRA). A starts kaiming-uniform(a = √5), i.e. U(-1/√in, 1/√in) like torch's
// nn.Linear default; B starts at zero, so an untrained adapter leaves the model unchanged.

import * as tf from "@tensorflow/tfjs-core";
import { linear } from "../model/linear.js";
import type { Rng } from "../train/rng.js";
import { LORA_TARGET_MODULES, type LoraTargetModule } from "./lora-targets.js";

export { LORA_TARGET_MODULES, type LoraTargetModule };

export interface LoraOptions {
  /** rank r */
  r: number;
  alpha: number;
  dropout: number;
  /** default: all seven projections */
  targetModules?: readonly LoraTargetModule[];
  /** seed for A's initialisation */
  seed?: number;
  useRslora?: boolean;
}

export interface LoraSettings {
  r: number;
  alpha: number;
  dropout: number;
  targetModules: LoraTargetModule[];
  useRslora: boolean;
  scaling: number;
}

export function resolveLoraSettings(options: LoraOptions): LoraSettings {
  const { r, alpha, dropout } = options;
  if (!Number.isInteger(r) || r <= 0) throw new Error(`LoRA rank r must be a positive integer, got ${r}`);
  if (!(alpha > 0)) throw new Error(`LoRA alpha must be > 0, got ${alpha}`);
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`LoRA dropout must be in [0, 1), got ${dropout}`);
  const targetModules = [...(options.targetModules ?? LORA_TARGET_MODULES)];
  for (const m of targetModules) {
    if (!LORA_TARGET_MODULES.includes(m)) {
      throw new Error(`LoRA target module "${m}" is not one of ${LORA_TARGET_MODULES.join(", ")}`);
    }
  }
  if (targetModules.length === 0) throw new Error("LoRA needs at least one target module");
  const useRslora = options.useRslora === true;
  return {
    r,
    alpha,
    dropout,
    targetModules,
    useRslora,
    scaling: useRslora ? alpha / Math.sqrt(r) : alpha / r,
  };
}

/** One LoRA pair on one linear layer; A and B are trainable variables. */
export interface LoraPair {
  a: tf.Variable; // [r, in]
  b: tf.Variable; // [out, r]
}

let variableCounter = 0;
/** tfjs variable names are process-global: make each one unique, keep the readable part. */
export function uniqueVariableName(name: string): string {
  variableCounter += 1;
  return `v${variableCounter}/${name}`;
}

/** A ~ U(-1/√in, 1/√in) (kaiming-uniform with a = √5), B = 0. */
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

/**
 * Base linear plus the LoRA branch. `dropoutSeed` non-null = training with dropout: the seed
 * makes the mask reproducible (the caller draws it from its RNG).
 */
export function loraLinear(
  x: tf.Tensor2D,
  weight: tf.Tensor2D,
  bias: tf.Tensor1D | undefined,
  pair: LoraPair | undefined,
  settings: LoraSettings | null,
  dropoutSeed: number | null,
): tf.Tensor2D {
  const base = linear(x, weight, bias);
  if (!pair || !settings) return base;
  const input =
    dropoutSeed !== null && settings.dropout > 0
      ? tf.dropout(x, settings.dropout, undefined, dropoutSeed)
      : x;
  const down = linear(input as tf.Tensor2D, pair.a as unknown as tf.Tensor2D);
  // scale the rank-r activation, not the [N, out] one: same product, r/out of the work
  const up = linear(tf.mul(down, settings.scaling), pair.b as unknown as tf.Tensor2D);
  return tf.add(base, up);
}
