// A LoRA adapter's configuration, as PEFT's LoraConfig holds it: rank r, lora_alpha, lora_dropout,
// target_modules, use_rslora, and the scaling they give (alpha / r, or alpha / √r with rsLoRA).

import { LORA_TARGET_MODULES, type LoraTargetModule } from "./lora-targets.js";

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

/** A resolved LoraConfig: every field set, and the scaling of the LoRA branch. */
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
