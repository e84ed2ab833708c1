// The engine's peak-memory estimator (worker/engine/train/memory-estimate.ts: the one the worker
// refuses a job with), loaded when this build has it. A build without it answers null, and the
// preflight says the estimate is unavailable instead of guessing.
import type { ModelConfig } from "../../worker/engine/hf/config.js";

export interface TrainingMemoryInput {
  config: ModelConfig;
  method: "lora" | "full";
  loraRank: number;
  loraTargets: string[];
  microBatch: number;
  seqLen: number;
  backend: string;
}

export interface TrainingMemoryEstimate {
  totalBytes: number;
  breakdown: { weights: number; trainable: number; optimizer: number; activations: number; logits: number };
  gradientCheckpointing: boolean;
}

export interface TrainingMemoryEstimator {
  estimateTrainingMemory(input: TrainingMemoryInput): TrainingMemoryEstimate;
  trainingMemoryBudget(backend: string): { bytes: number; source: string };
}

let loaded: Promise<TrainingMemoryEstimator | null> | null = null;

export function loadMemoryEstimator(): Promise<TrainingMemoryEstimator | null> {
  // a string variable: TypeScript must not require the module in builds that lack it
  const specifier: string = "../../worker/engine/train/memory-estimate.js";
  loaded ??= import(specifier).then(
    (m: Partial<TrainingMemoryEstimator>) =>
      typeof m.estimateTrainingMemory === "function" && typeof m.trainingMemoryBudget === "function"
        ? (m as TrainingMemoryEstimator)
        : null,
    () => null,
  );
  return loaded;
}
