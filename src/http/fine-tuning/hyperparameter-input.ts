// The hyperparameters a job may ask for (OpenAI's three plus our extensions), checked at create
// with the engine's own rules (worker/engine/train/hyperparameters.ts) so a job that is accepted
// never fails later on a value; each problem is a 400 naming the field.
import {
  type DpoHyperparametersInput,
  resolveDpoHyperparameters,
} from "../../../worker/engine/train/dpo-hyperparameters.js";
import {
  HyperparameterError,
  type HyperparametersInput,
  resolveHyperparameters,
} from "../../../worker/engine/train/hyperparameters.js";
import { badRequest } from "../api-error.js";

/** OpenAI's three: "auto" or a number. */
const OPENAI_KEYS = ["batch_size", "learning_rate_multiplier", "n_epochs"] as const;
/** Our extensions (method.supervised.hyperparameters only). */
const EXTENSION_KEYS = [
  "lora_rank",
  "lora_alpha",
  "lora_dropout",
  "target_modules",
  "max_seq_length",
  "packing",
  "warmup_ratio",
  "weight_decay",
  "lr_scheduler",
  "full_finetune",
] as const;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * Checks `raw` (the object under `paramPrefix`, e.g. "method.supervised.hyperparameters")
 * and returns it as the engine's input; `allowExtensions` is false for the deprecated
 * top-level `hyperparameters`, which OpenAI defines with the three keys only.
 */
export function checkHyperparameters(
  raw: unknown,
  paramPrefix: string,
  allowExtensions: boolean,
): HyperparametersInput {
  if (raw === undefined || raw === null) return {};
  if (!isPlainObject(raw))
    throw badRequest(`'${paramPrefix}' must be an object.`, paramPrefix, "invalid_type");
  const allowed: readonly string[] = allowExtensions ? [...OPENAI_KEYS, ...EXTENSION_KEYS] : OPENAI_KEYS;
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) {
      throw badRequest(
        `Unrecognized hyperparameter '${key}'. Supported: ${allowed.join(", ")}.`,
        `${paramPrefix}.${key}`,
        "invalid_value",
      );
    }
  }
  for (const key of OPENAI_KEYS) {
    const v = raw[key];
    if (v !== undefined && v !== "auto" && typeof v !== "number") {
      throw badRequest(
        `'${paramPrefix}.${key}' must be "auto" or a number.`,
        `${paramPrefix}.${key}`,
        "invalid_type",
      );
    }
  }
  for (const key of ["packing", "full_finetune"] as const) {
    if (raw[key] !== undefined && typeof raw[key] !== "boolean") {
      throw badRequest(`'${paramPrefix}.${key}' must be a boolean.`, `${paramPrefix}.${key}`, "invalid_type");
    }
  }
  const input = raw as HyperparametersInput;
  // OpenAI's stated range for the multiplier is "> 0"; the engine's is [1e-6, 100].
  try {
    // The example count only feeds `auto` values, which are always in range: any n checks the rest.
    resolveHyperparameters(input, 100);
  } catch (err) {
    if (err instanceof HyperparameterError) {
      throw badRequest(
        `Invalid value for '${paramPrefix}.${err.param}': ${err.message}.`,
        `${paramPrefix}.${err.param}`,
        "invalid_value",
      );
    }
    throw err;
  }
  return input;
}

/** DPO's own keys, beside the supervised extensions (packing excepted: pairs are not packed). */
const DPO_KEYS = ["beta", "loss_type", "rpo_alpha"] as const;

/** Checks `method.dpo.hyperparameters` and returns it as the engine's input. */
export function checkDpoHyperparameters(raw: unknown, paramPrefix: string): DpoHyperparametersInput {
  if (raw === undefined || raw === null) return {};
  if (!isPlainObject(raw))
    throw badRequest(`'${paramPrefix}' must be an object.`, paramPrefix, "invalid_type");
  const allowed: readonly string[] = [
    ...OPENAI_KEYS,
    ...EXTENSION_KEYS.filter((k) => k !== "packing"),
    ...DPO_KEYS,
  ];
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) {
      throw badRequest(
        `Unrecognized hyperparameter '${key}'. Supported: ${allowed.join(", ")}.`,
        `${paramPrefix}.${key}`,
        "invalid_value",
      );
    }
  }
  for (const key of [...OPENAI_KEYS, "beta"]) {
    const v = raw[key];
    if (v !== undefined && v !== "auto" && typeof v !== "number") {
      throw badRequest(
        `'${paramPrefix}.${key}' must be "auto" or a number.`,
        `${paramPrefix}.${key}`,
        "invalid_type",
      );
    }
  }
  if (raw.full_finetune !== undefined && typeof raw.full_finetune !== "boolean") {
    throw badRequest(
      `'${paramPrefix}.full_finetune' must be a boolean.`,
      `${paramPrefix}.full_finetune`,
      "invalid_type",
    );
  }
  const input = raw as DpoHyperparametersInput;
  try {
    resolveDpoHyperparameters(input, 100);
  } catch (err) {
    if (err instanceof HyperparameterError) {
      throw badRequest(
        `Invalid value for '${paramPrefix}.${err.param}': ${err.message}.`,
        `${paramPrefix}.${err.param}`,
        "invalid_value",
      );
    }
    throw err;
  }
  return input;
}
