// Peak memory of one training step, estimated before any tensor exists, so a job that cannot fit
// is refused with numbers instead of aborting halfway (wasm's `Aborted()`, an OOM kill).
//
// The model follows what the engine keeps alive: every weight once (tied heads are one tensor),
// trainable parameters with their gradient and the accumulated gradient, AdamW's two moments,
// the tensors each decoder layer saves for its backward pass (the engine frees everything else
// as soon as a block ends), one layer's worth of transient backward buffers, and the LM head +
// cross-entropy computed in chunks of `lmHeadChunkTokens` tokens (never the whole
// [tokens × vocab] logits). With gradient checkpointing a layer keeps only its input, and the
// layer being differentiated is recomputed. The numbers are float32 counts, deliberately a little
// pessimistic, plus a fixed runtime overhead per backend.
//
// Pure: no tfjs, no I/O (trainingMemoryBudget, which reads the machine, is the one exception).

import { readFileSync } from "node:fs";
import { freemem } from "node:os";
import type { ModelConfig } from "../hf/config.js";

export interface TrainingMemoryInput {
  config: ModelConfig;
  method: "lora" | "full";
  loraRank: number;
  /** PEFT module names (q_proj … down_proj); ignored for full fine-tuning */
  loraTargets: string[];
  /** rows per forward/backward pass */
  microBatch: number;
  /** tokens per row */
  seqLen: number;
  /** "tensorflow" | "wasm" | "cpu" (anything else is treated like cpu) */
  backend: string;
  /** When given, checkpointing turns on exactly when the estimate without it exceeds this. */
  budgetBytes?: number;
  /** Force checkpointing on or off (wins over budgetBytes). */
  gradientCheckpointing?: boolean;
  /** LoRA dropout > 0 keeps one mask and one dropped copy of each adapted input. */
  loraDropout?: number;
}

export interface TrainingMemoryBreakdown {
  weights: number;
  trainable: number;
  optimizer: number;
  activations: number;
  logits: number;
}

export interface TrainingMemoryEstimate {
  totalBytes: number;
  breakdown: TrainingMemoryBreakdown;
  gradientCheckpointing: boolean;
}

const F32 = 4;

/** Elements of one LM-head chunk's logits: tokens per chunk = floor(this / vocab), at least 1. */
export const LM_HEAD_CHUNK_ELEMENTS = 1 << 24;

/** Tokens scored per LM-head chunk for a vocabulary size. */
export function lmHeadChunkTokens(vocabSize: number): number {
  return Math.max(1, Math.floor(LM_HEAD_CHUNK_ELEMENTS / vocabSize));
}

/** Memory the backend itself needs beyond tensors: libtensorflow and its allocator, Node's heap. */
const RUNTIME_OVERHEAD: Record<string, number> = {
  tensorflow: 900 * 2 ** 20,
  // the wasm heap holds only tensors; fragmentation of its allocator is what remains
  wasm: 256 * 2 ** 20,
  cpu: 400 * 2 ** 20,
};

interface Dims {
  D: number;
  F: number;
  qd: number;
  kvd: number;
  H: number;
  V: number;
  L: number;
}

function dims(c: ModelConfig): Dims {
  return {
    D: c.hiddenSize,
    F: c.intermediateSize,
    qd: c.numHeads * c.headDim,
    kvd: c.numKvHeads * c.headDim,
    H: c.numHeads,
    V: c.vocabSize,
    L: c.numLayers,
  };
}

/** Base parameters, tied LM head counted once. */
export function baseParameterCount(c: ModelConfig): number {
  const { D, F, qd, kvd, V, L } = dims(c);
  const bias = (on: boolean, n: number) => (on ? n : 0);
  const layer =
    2 * D +
    D * qd +
    bias(c.qkvBias, qd) +
    2 * (D * kvd + bias(c.qkvBias, kvd)) +
    qd * D +
    bias(c.oBias, D) +
    2 * (D * F + bias(c.mlpBias, F)) +
    F * D +
    bias(c.mlpBias, D);
  return V * D * (c.tieWordEmbeddings ? 1 : 2) + L * layer + D;
}

/** [in, out] of each LoRA-adaptable module. */
function moduleShapes(d: Dims): Record<string, [number, number]> {
  return {
    q_proj: [d.D, d.qd],
    k_proj: [d.D, d.kvd],
    v_proj: [d.D, d.kvd],
    o_proj: [d.qd, d.D],
    gate_proj: [d.D, d.F],
    up_proj: [d.D, d.F],
    down_proj: [d.F, d.D],
  };
}

/** LoRA parameters: r · (in + out) per adapted module per layer. */
export function loraParameterCount(c: ModelConfig, rank: number, targets: readonly string[]): number {
  const shapes = moduleShapes(dims(c));
  let perLayer = 0;
  for (const t of new Set(targets)) {
    const s = shapes[t];
    if (s) perLayer += rank * (s[0] + s[1]);
  }
  return perLayer * c.numLayers;
}

/**
 * float32 values one decoder layer keeps for backward, per token: the inputs of the norms,
 * matmuls and products the gradient needs, RoPE's rotated halves, the softmax output
 * (H × seqLen per token), SwiGLU's gate, sigmoid, up and product — times SAVED_OVERHEAD, what
 * the backends were measured to hold beyond that list (tfjs saves clones of op inputs, and
 * TensorFlow's kernels keep their own temporaries): SmolLM2-135M at 1 × 256 on tfjs-node holds
 * 1.0–1.5 GB after the forward pass, 2.1 GB at the peak, over the weights and runtime.
 */
const SAVED_OVERHEAD = 2.5;
function savedPerTokenPerLayer(
  d: Dims,
  seqLen: number,
  lora: { rank: number; targets: number; dropout: boolean },
) {
  const norms = 2 * 3 * d.D;
  const attention = 5 * d.qd + 4 * d.kvd + d.H * seqLen + d.D;
  const mlp = 5 * d.F;
  // each adapted module keeps its rank-r activations twice; dropout keeps a mask and a copy
  const loraSaved = lora.targets * 2 * lora.rank + (lora.dropout ? lora.targets * 2 * d.D : 0);
  return SAVED_OVERHEAD * (norms + attention + mlp + loraSaved);
}

/** Everything one layer creates in its forward pass, per token (what backward transiently holds). */
function transientPerTokenPerLayer(d: Dims, seqLen: number): number {
  return 14 * d.D + 11 * d.qd + 13 * d.kvd + 9 * d.F + 3 * d.H * seqLen;
}

function estimate(input: TrainingMemoryInput, checkpointing: boolean): TrainingMemoryEstimate {
  const { config, method, microBatch, seqLen } = input;
  if (!(microBatch >= 1) || !(seqLen >= 1)) {
    throw new Error(
      `estimateTrainingMemory: microBatch and seqLen must be ≥ 1, got ${microBatch}, ${seqLen}`,
    );
  }
  const d = dims(config);
  const tokens = microBatch * seqLen;
  const base = baseParameterCount(config);
  const isLora = method === "lora";
  const loraTargets = isLora ? new Set(input.loraTargets).size : 0;
  const trainableParams = isLora ? loraParameterCount(config, input.loraRank, input.loraTargets) : base;

  const weights = base * F32;
  // LoRA: the parameters themselves; both: the gradient and the accumulated/clipped gradient
  const trainable = (isLora ? trainableParams : 0) * F32 + 2 * trainableParams * F32;
  // A full fine-tune's step also holds, for a while, what LoRA's never has at this size: the
  // dense gradient of the (tied) embedding, the optimizer's terms for the largest parameters and
  // the allocator's slack around them. Measured: SmolLM2-135M full, 4 × 256, peaks about three
  // parameter copies above the other terms on tfjs-node (5.4 GiB against 4.0), and that step
  // aborts the 4 GiB wasm heap.
  const fullStepTransient = isLora ? 0 : 3 * trainableParams * F32;
  const optimizer = 2 * trainableParams * F32 + fullStepTransient;

  const saved = savedPerTokenPerLayer(d, seqLen, {
    rank: isLora ? input.loraRank : 0,
    targets: loraTargets,
    dropout: isLora && (input.loraDropout ?? 0) > 0,
  });
  const transient = transientPerTokenPerLayer(d, seqLen);
  const kept = checkpointing ? d.L * d.D + saved : d.L * saved;
  // the embedding output and the final norm's saved input and output
  const edges = 3 * d.D;
  const activations = tokens * (kept + transient + edges) * F32;

  // per chunk: logits, their softmax/exp, the gradient and the one-hot/target buffer; a full
  // fine-tune also builds the head's weight gradient once (counted in `trainable` already)
  const chunk = Math.min(tokens, lmHeadChunkTokens(d.V));
  const logits = 4 * chunk * d.V * F32;

  const overhead = RUNTIME_OVERHEAD[input.backend] ?? RUNTIME_OVERHEAD.cpu;
  const breakdown = { weights, trainable, optimizer, activations, logits };
  const step = weights + trainable + optimizer + activations + logits + overhead;
  // loading holds the file's float32 copy and the backend's at once before the first is freed:
  // Qwen2.5-0.5B peaks at 4.9 GB on tfjs-node while loading, its 1 × 512 LoRA step below that
  // (on wasm the file's copy lives outside the heap the budget is about)
  const loading = input.backend === "wasm" ? 0 : 2 * weights + overhead;
  const totalBytes = Math.ceil(Math.max(step, loading));
  return { totalBytes, breakdown, gradientCheckpointing: checkpointing };
}

/**
 * Activations above this turn checkpointing on by themselves: beyond it they outweigh what
 * PyTorch keeps for the same step (which frees as it goes), and the recompute costs about a
 * third more compute at most. Small models and short rows stay below it and run without.
 */
export const CHECKPOINT_ACTIVATIONS_ABOVE = 2 ** 30;

/**
 * Peak bytes of one training step. Checkpointing is on when forced; otherwise when the
 * activations without it exceed CHECKPOINT_ACTIVATIONS_ABOVE, or `budgetBytes` is given and the
 * step does not fit without it.
 */
export function estimateTrainingMemory(input: TrainingMemoryInput): TrainingMemoryEstimate {
  if (input.gradientCheckpointing !== undefined) return estimate(input, input.gradientCheckpointing);
  const plain = estimate(input, false);
  const overBudget = input.budgetBytes !== undefined && plain.totalBytes > input.budgetBytes;
  if (!overBudget && plain.breakdown.activations <= CHECKPOINT_ACTIVATIONS_ABOVE) return plain;
  return estimate(input, true);
}

/** wasm32 linear memory tops out at 4 GiB, whatever the machine has. */
export const WASM_HEAP_BYTES = 4 * 2 ** 30;

/** MemAvailable from /proc/meminfo (what the kernel can hand out without swapping), else os.freemem(). */
function availableRam(): { bytes: number; source: string } {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"));
    if (m) return { bytes: Number(m[1]) * 1024, source: "MemAvailable in /proc/meminfo" };
  } catch {
    // not Linux
  }
  return { bytes: freemem(), source: "free memory (os.freemem)" };
}

/** "12G", "800M", "4GiB" or plain bytes → bytes; null when unset or malformed. */
export function parseByteSize(raw: string | undefined): number | null {
  if (!raw) return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(raw);
  if (!m) return null;
  const scale = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase()] ?? 1;
  return Math.floor(Number(m[1]) * scale);
}

export interface MemoryBudget {
  bytes: number;
  /** where the number comes from, for messages */
  source: string;
}

/** A configured budget ("12G", "800M", …) named by its source; null when unset or malformed. */
export function configuredMemoryBudget(raw: string | undefined, source: string): MemoryBudget | null {
  const bytes = parseByteSize(raw);
  return bytes === null ? null : { bytes, source };
}

/**
 * Memory a training step may use on this backend: the configured budget when given (the
 * workers' WORKER_MEMORY_BUDGET); wasm's 4 GiB heap (or less, when the machine has less
 * available); otherwise what this process already holds (the runtime the estimate counts is
 * loaded) plus the RAM still available.
 */
export function trainingMemoryBudget(backend: string, configured: MemoryBudget | null = null): MemoryBudget {
  if (configured !== null) return configured;
  const ram = availableRam();
  if (backend === "wasm") {
    return ram.bytes < WASM_HEAP_BYTES
      ? { bytes: ram.bytes, source: `${ram.source} (below the 4 GiB wasm heap)` }
      : { bytes: WASM_HEAP_BYTES, source: "the wasm32 heap (4 GiB)" };
  }
  const held = process.memoryUsage.rss();
  return { bytes: ram.bytes + held, source: `this process's RSS + ${ram.source}` };
}
