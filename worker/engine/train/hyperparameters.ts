// Resolving a job's hyperparameters: every `auto` becomes a number by the rules below, and
// the resolved object is what the jobs worker writes back into the job (as OpenAI does).
//
// The rules (README-ready):
// - n_epochs (OpenAI's cookbook rule, n = number of training examples):
//     3; if n·3 < 100 then min(25, 100 // n); if n·3 > 25000 then max(1, 25000 // n).
// - batch_size (rows per optimizer step; a row is one packed or padded sequence of
//   max_seq_length tokens): the power of two nearest below 0.2% of n, clamped to 1..8
//     n < 1000 → 1, n < 2000 → 2, n < 4000 → 4, otherwise 8.
//   The cap of 8 keeps a CPU step short; larger batches are reached by asking for them.
// - learning_rate_multiplier: square-root batch scaling around batch 8,
//     sqrt(batch_size / 8) rounded to 2 decimals (1 → 0.35, 2 → 0.5, 4 → 0.71, 8 → 1.0).
// - learning rate = base × multiplier, base 2e-4 for LoRA and 2e-5 for full fine-tuning.
// - Extensions (method.supervised.hyperparameters), defaults: lora_rank 8, lora_alpha 16
//   (lora_alpha 2 × lora_rank), lora_dropout 0.05, target_modules the seven projections, max_seq_length 1024,
//   packing true, warmup_ratio 0.03, weight_decay 0, lr_scheduler "linear", full_finetune false.

import { LORA_TARGET_MODULES, type LoraTargetModule } from "../lora/lora-targets.js";
import type { LrSchedulerType } from "./schedule.js";

export const LORA_BASE_LEARNING_RATE = 2e-4;
export const FULL_FINETUNE_BASE_LEARNING_RATE = 2e-5;
export const DEFAULT_TARGET_MODULES: readonly string[] = LORA_TARGET_MODULES;

export type Auto<T> = T | "auto";

/** What a job may carry; missing fields are `auto` or take the default. */
export interface HyperparametersInput {
  n_epochs?: Auto<number>;
  batch_size?: Auto<number>;
  learning_rate_multiplier?: Auto<number>;
  lora_rank?: number;
  lora_alpha?: number;
  lora_dropout?: number;
  target_modules?: string[];
  max_seq_length?: number;
  packing?: boolean;
  warmup_ratio?: number;
  weight_decay?: number;
  lr_scheduler?: LrSchedulerType;
  full_finetune?: boolean;
}

export interface ResolvedHyperparameters {
  n_epochs: number;
  batch_size: number;
  learning_rate_multiplier: number;
  lora_rank: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: LoraTargetModule[];
  max_seq_length: number;
  packing: boolean;
  warmup_ratio: number;
  weight_decay: number;
  lr_scheduler: LrSchedulerType;
  full_finetune: boolean;
}

/** The rules above, as one sentence each: what a user reads beside a value `auto` chose. */
export const AUTO_RULES = {
  n_epochs:
    "3; if n·3 < 100 then min(25, 100 // n); if n·3 > 25000 then max(1, 25000 // n) (n = training examples)",
  batch_size:
    "the power of two nearest below 0.2% of n, clamped to 1..8: n < 1000 → 1, n < 2000 → 2, n < 4000 → 4, otherwise 8",
  learning_rate_multiplier:
    "sqrt(batch_size / 8) rounded to 2 decimals (base learning rate 2e-4 for LoRA, 2e-5 for full fine-tuning)",
  lora_alpha: "2 × lora_rank",
} as const;

export type AutoRuleParam = keyof typeof AUTO_RULES;

/**
 * For each value the rules chose (absent or `auto` in `input`): the rule, with the n or
 * batch size it was applied to and the result.
 */
export function explainAutoValues(
  input: HyperparametersInput,
  resolved: ResolvedHyperparameters,
  numExamples: number,
): Partial<Record<AutoRuleParam, string>> {
  const isAuto = (v: unknown) => v === undefined || v === "auto";
  const out: Partial<Record<AutoRuleParam, string>> = {};
  if (isAuto(input.n_epochs))
    out.n_epochs = `${AUTO_RULES.n_epochs}; n = ${numExamples} → ${resolved.n_epochs}`;
  if (isAuto(input.batch_size))
    out.batch_size = `${AUTO_RULES.batch_size}; n = ${numExamples} → ${resolved.batch_size}`;
  if (isAuto(input.learning_rate_multiplier)) {
    out.learning_rate_multiplier = `${AUTO_RULES.learning_rate_multiplier}; batch_size ${resolved.batch_size} → ${resolved.learning_rate_multiplier}`;
  }
  if (input.lora_alpha === undefined && !resolved.full_finetune) {
    out.lora_alpha = `${AUTO_RULES.lora_alpha}; lora_rank ${resolved.lora_rank} → ${resolved.lora_alpha}`;
  }
  return out;
}

/** OpenAI's default epoch count for n training examples. */
export function autoEpochs(n: number): number {
  const target = 3;
  const minExamples = 100;
  const maxExamples = 25000;
  if (n * target < minExamples) return Math.min(25, Math.floor(minExamples / n));
  if (n * target > maxExamples) return Math.max(1, Math.floor(maxExamples / n));
  return target;
}

export function autoBatchSize(n: number): number {
  const share = n * 0.002;
  if (share < 2) return 1;
  return Math.min(8, 2 ** Math.floor(Math.log2(share)));
}

export function autoLearningRateMultiplier(batchSize: number): number {
  return Math.round(Math.sqrt(batchSize / 8) * 100) / 100;
}

/** base learning rate × multiplier */
export function peakLearningRate(
  hp: Pick<ResolvedHyperparameters, "full_finetune" | "learning_rate_multiplier">,
): number {
  const base = hp.full_finetune ? FULL_FINETUNE_BASE_LEARNING_RATE : LORA_BASE_LEARNING_RATE;
  return base * hp.learning_rate_multiplier;
}

function requireRange(name: string, value: number, min: number, max: number, integer: boolean): number {
  if (
    typeof value !== "number" ||
    !Number.isFinite(value) ||
    value < min ||
    value > max ||
    (integer && !Number.isInteger(value))
  ) {
    throw new HyperparameterError(
      name,
      `${name} must be ${integer ? "an integer" : "a number"} in [${min}, ${max}], got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** A bad value; `param` names the field so the API can answer 400 with it. */
export class HyperparameterError extends Error {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(message);
    this.name = "HyperparameterError";
  }
}

/**
 * Resolve every `auto` and default. `numExamples` is the number of usable training
 * examples (lines), the n in the rules above.
 */
export function resolveHyperparameters(
  input: HyperparametersInput,
  numExamples: number,
): ResolvedHyperparameters {
  if (!(Number.isInteger(numExamples) && numExamples > 0)) {
    throw new HyperparameterError("training_file", `need at least one training example, got ${numExamples}`);
  }
  const isAuto = (v: unknown) => v === undefined || v === "auto";
  const n_epochs = isAuto(input.n_epochs)
    ? autoEpochs(numExamples)
    : requireRange("n_epochs", input.n_epochs as number, 1, 50, true);
  const batch_size = isAuto(input.batch_size)
    ? autoBatchSize(numExamples)
    : requireRange("batch_size", input.batch_size as number, 1, 256, true);
  const learning_rate_multiplier = isAuto(input.learning_rate_multiplier)
    ? autoLearningRateMultiplier(batch_size)
    : requireRange("learning_rate_multiplier", input.learning_rate_multiplier as number, 1e-6, 100, false);
  const lora_rank = requireRange("lora_rank", input.lora_rank ?? 8, 1, 1024, true);
  const lr_scheduler = input.lr_scheduler ?? "linear";
  if (!["linear", "cosine", "constant"].includes(lr_scheduler)) {
    throw new HyperparameterError(
      "lr_scheduler",
      `lr_scheduler must be "linear", "cosine" or "constant", got ${JSON.stringify(lr_scheduler)}`,
    );
  }
  const target_modules = input.target_modules ?? [...DEFAULT_TARGET_MODULES];
  if (
    !Array.isArray(target_modules) ||
    target_modules.length === 0 ||
    !target_modules.every((m) => DEFAULT_TARGET_MODULES.includes(m))
  ) {
    throw new HyperparameterError(
      "target_modules",
      `target_modules must be a non-empty subset of ${DEFAULT_TARGET_MODULES.join(", ")}, got ${JSON.stringify(target_modules)}`,
    );
  }
  return {
    n_epochs,
    batch_size,
    learning_rate_multiplier,
    lora_rank,
    lora_alpha: requireRange("lora_alpha", input.lora_alpha ?? 2 * lora_rank, 1e-6, 1e6, false),
    lora_dropout: requireRange("lora_dropout", input.lora_dropout ?? 0.05, 0, 0.99, false),
    target_modules: [...new Set(target_modules)] as LoraTargetModule[],
    max_seq_length: requireRange("max_seq_length", input.max_seq_length ?? 1024, 8, 131072, true),
    packing: input.packing ?? true,
    warmup_ratio: requireRange("warmup_ratio", input.warmup_ratio ?? 0.03, 0, 1, false),
    weight_decay: requireRange("weight_decay", input.weight_decay ?? 0, 0, 10, false),
    lr_scheduler,
    full_finetune: input.full_finetune ?? false,
  };
}

/**
 * Check explicit values without knowing the dataset (job creation: answer 400 early). Throws
 * HyperparameterError whose `param` is the bare field name; the API prefixes its path.
 */
export function validateHyperparameters(input: HyperparametersInput): void {
  resolveHyperparameters(input, 1);
}
