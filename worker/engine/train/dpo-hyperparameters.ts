// A DPO job's hyperparameters: the supervised ones (OpenAI's three and our LoRA/schedule
// extensions; no packing, a pair is scored as two padded rows) plus DPO's own:
// - beta: "auto" → 0.1 (TRL's default), written back like the other auto values.
// - loss_type: "sigmoid" (default, TRL's and OpenAI's DPO), "hinge" or "ipo" (dpo-loss.ts).
// - rpo_alpha: weight of an NLL term on the chosen answers (TRL's rpo_alpha); null = off.

import { DPO_LOSS_TYPES, type DpoLossType } from "./dpo-loss.js";
import {
  type Auto,
  HyperparameterError,
  type HyperparametersInput,
  type ResolvedHyperparameters,
  resolveHyperparameters,
} from "./hyperparameters.js";

export const DEFAULT_DPO_BETA = 0.1;

export interface DpoHyperparametersInput extends Omit<HyperparametersInput, "packing"> {
  beta?: Auto<number>;
  loss_type?: DpoLossType;
  rpo_alpha?: number | null;
}

export interface ResolvedDpoHyperparameters extends Omit<ResolvedHyperparameters, "packing"> {
  beta: number;
  loss_type: DpoLossType;
  rpo_alpha: number | null;
}

export function resolveDpoHyperparameters(
  input: DpoHyperparametersInput,
  numPairs: number,
): ResolvedDpoHyperparameters {
  const { beta, loss_type, rpo_alpha, ...common } = input;
  const { packing: _packing, ...resolved } = resolveHyperparameters(common, numPairs);
  const b = beta === undefined || beta === "auto" ? DEFAULT_DPO_BETA : beta;
  if (typeof b !== "number" || !Number.isFinite(b) || b <= 0 || b > 100)
    throw new HyperparameterError(
      "beta",
      `beta must be "auto" or a number in (0, 100], got ${JSON.stringify(beta)}`,
    );
  const lossType = loss_type ?? "sigmoid";
  if (!DPO_LOSS_TYPES.includes(lossType))
    throw new HyperparameterError(
      "loss_type",
      `loss_type must be one of ${DPO_LOSS_TYPES.join(", ")}, got ${JSON.stringify(loss_type)}`,
    );
  const rpo = rpo_alpha ?? null;
  if (rpo !== null && (typeof rpo !== "number" || !Number.isFinite(rpo) || rpo < 0 || rpo > 100))
    throw new HyperparameterError(
      "rpo_alpha",
      `rpo_alpha must be null or a number in [0, 100], got ${JSON.stringify(rpo_alpha)}`,
    );
  return { ...resolved, beta: b, loss_type: lossType, rpo_alpha: rpo };
}
