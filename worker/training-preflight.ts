// Before a job trains: which backend it runs on (stated in the job's events, with a warning that
// names the fix on a slow fallback), and whether one training step fits that backend's memory.
// A step that cannot fit fails the job with the numbers and what to change, instead of an
// abort halfway (wasm's `Aborted()`, an OOM kill); one that fits only with gradient
// checkpointing gets it turned on.

import { loadMemoryBudget } from "../src/config.js";
import type { NewEvent } from "../src/store/jobs/job-events.js";
import type { JobError } from "../src/store/jobs/job-objects.js";
import type { BackendInfo } from "./engine/backend/backend.js";
import type { ModelConfig } from "./engine/hf/config.js";
import {
  estimateTrainingMemory,
  type TrainingMemoryEstimate,
  trainingMemoryBudget,
} from "./engine/train/memory-estimate.js";

export interface PreflightInput {
  backend: BackendInfo;
  config: ModelConfig;
  method: "lora" | "full";
  loraRank: number;
  loraTargets: string[];
  loraDropout: number;
  /** rows per forward/backward pass actually used (WORKER_MICRO_BATCH capped by batch_size) */
  microBatch: number;
  /** the longest row the step will see */
  seqLen: number;
  maxSeqLength: number;
  budget?: { bytes: number; source: string };
}

export interface PreflightResult {
  events: NewEvent[];
  estimate: TrainingMemoryEstimate;
  budget: { bytes: number; source: string };
  /** set when the step cannot fit: fail the job with it */
  failure: JobError | null;
}

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;

function backendLine(b: BackendInfo): string {
  if (b.name === "tensorflow") return `tensorflow (${b.tensorflowPackage ?? "tfjs-node"})`;
  if (b.name === "wasm") return b.nativeMatmul ? "wasm + OpenBLAS matmul" : "pure wasm (no native matmul)";
  return "tfjs cpu";
}

export function trainingPreflight(input: PreflightInput): PreflightResult {
  const budget = input.budget ?? trainingMemoryBudget(input.backend.name, loadMemoryBudget());
  const estimate = estimateTrainingMemory({
    config: input.config,
    method: input.method,
    loraRank: input.loraRank,
    loraTargets: input.loraTargets,
    loraDropout: input.loraDropout,
    microBatch: input.microBatch,
    seqLen: input.seqLen,
    backend: input.backend.name,
    budgetBytes: budget.bytes,
  });
  const b = estimate.breakdown;
  const parts = `weights ${gb(b.weights)}, trainable ${gb(b.trainable)}, optimizer ${gb(b.optimizer)}, activations ${gb(b.activations)}, logits ${gb(b.logits)}`;
  const events: NewEvent[] = [
    {
      message: `Training backend: ${backendLine(input.backend)}; estimated peak memory ${gb(estimate.totalBytes)} of ${gb(budget.bytes)} (${budget.source}), ${input.microBatch} × ${input.seqLen} tokens per pass${estimate.gradientCheckpointing ? ", gradient checkpointing on" : ""}`,
      data: {
        backend: input.backend.name,
        native_matmul: input.backend.nativeMatmul,
        estimated_peak_bytes: estimate.totalBytes,
        budget_bytes: budget.bytes,
        gradient_checkpointing: estimate.gradientCheckpointing,
      },
    },
  ];
  if (input.backend.slowFallback) events.push({ level: "warn", message: input.backend.slowFallback });
  if (estimate.totalBytes <= budget.bytes) return { events, estimate, budget, failure: null };

  const advice = [
    input.seqLen > 256 ? `lower max_seq_length (now ${input.maxSeqLength})` : null,
    input.microBatch > 1
      ? `lower WORKER_MICRO_BATCH on the worker (now ${input.microBatch} rows per pass)`
      : null,
    input.method === "full" ? "use LoRA instead of full_finetune" : null,
    input.backend.name === "wasm"
      ? "run the worker on the tensorflow backend (npm run build:tfjs-node), which is not limited to the 4 GiB wasm heap"
      : "run the job on a worker with more memory (WORKER_MEMORY_BUDGET overrides the budget)",
  ].filter((x): x is string => x !== null);
  return {
    events,
    estimate,
    budget,
    failure: {
      code: "insufficient_memory",
      message: `One training step needs about ${gb(estimate.totalBytes)} (${parts}, with gradient checkpointing) but the ${input.backend.name} backend has ${gb(budget.bytes)} (${budget.source}). To fit: ${advice.join("; ")}.`,
      param: input.seqLen > 256 ? "hyperparameters.max_seq_length" : null,
    },
  };
}

/** Out-of-memory failures as backends report them: wasm's abort, a bad heap access, TF's OOM. */
export function isOutOfMemory(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /Aborted\(|memory access out of bounds|Array buffer allocation failed|OOM when allocating|out of memory|Cannot allocate memory|RESOURCE_EXHAUSTED/i.test(
    msg,
  );
}
