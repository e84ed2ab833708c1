// One benchmark configuration in its own process (the backend and the peak RSS are per process):
//   tsx bench/real-size-step.ts --model DIR --mode lora|full --rows R --seq T --steps N
//       [--checkpointing auto|on|off]
// Trains R × T token slots per step (half the labels masked, like the PyTorch peer) through the
// real training loop (micro-batch = R rows, AdamW, clipping), LoRA r8/α16 on all seven projections
// or full, one warm-up step + N timed, and prints one JSON line: backend, median ms/step,
// tokens/s, peak RSS, the estimate it ran under, and model GFLOP/s.

import { readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadBackendOptions, loadMemoryBudget } from "../src/config.js";
import { initBackend } from "../worker/engine/backend/backend.js";
import { IGNORE_INDEX, type TokenBatch } from "../worker/engine/data/batch.js";
import { parseModelConfig } from "../worker/engine/hf/config.js";
import { LORA_TARGET_MODULES } from "../worker/engine/lora/lora-targets.js";
import { loadModel } from "../worker/engine/model/load-model.js";
import { estimateTrainingMemory, trainingMemoryBudget } from "../worker/engine/train/memory-estimate.js";
import { Rng } from "../worker/engine/train/rng.js";
import { type StepMetrics, train } from "../worker/engine/train/train-loop.js";
import { trainingStepFlops } from "./real-size-flops.js";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    mode: { type: "string", default: "lora" },
    rows: { type: "string", default: "4" },
    seq: { type: "string", default: "256" },
    steps: { type: "string", default: "3" },
    checkpointing: { type: "string", default: "auto" },
  },
});
const dir = values.model!;
const mode = values.mode === "full" ? "full" : "lora";
const rows = Number(values.rows);
const seq = Number(values.seq);
const steps = Number(values.steps);

const backend = await initBackend(loadBackendOptions());
const config = parseModelConfig(JSON.parse(readFileSync(path.join(dir, "config.json"), "utf8")));
const budget = trainingMemoryBudget(backend.name, loadMemoryBudget());
const estimate = estimateTrainingMemory({
  config,
  method: mode,
  loraRank: 8,
  loraTargets: [...LORA_TARGET_MODULES],
  microBatch: rows,
  seqLen: seq,
  backend: backend.name,
  budgetBytes: budget.bytes,
  ...(values.checkpointing === "auto" ? {} : { gradientCheckpointing: values.checkpointing === "on" }),
});
const t0 = performance.now();
const model = await loadModel(
  dir,
  mode === "full" ? { fullFinetune: true } : { lora: { r: 8, alpha: 16, dropout: 0 } },
);
model.gradientCheckpointing = estimate.gradientCheckpointing;
const loadMs = performance.now() - t0;

// (steps + 1) × rows rows of random ids, the first half of each row's labels masked
const n = (steps + 1) * rows;
const rng = Rng.fromSeed(0);
const data: TokenBatch = {
  batchSize: n,
  seqLen: seq,
  inputIds: new Int32Array(n * seq),
  labels: new Int32Array(n * seq),
  positionIds: new Int32Array(n * seq),
  segmentIds: new Int32Array(n * seq),
};
const top = Math.min(450, config.vocabSize);
for (let r = 0; r < n; r++) {
  for (let t = 0; t < seq; t++) {
    const i = r * seq + t;
    data.inputIds[i] = 3 + rng.nextInt(top - 3);
    data.labels[i] = t < seq / 2 ? IGNORE_INDEX : data.inputIds[i]!;
    data.positionIds[i] = t;
  }
}
const metrics: StepMetrics[] = [];
let error: string | null = null;
try {
  await train({
    model,
    train: data,
    hyperparameters: {
      n_epochs: 1,
      batch_size: rows,
      learning_rate_multiplier: 1,
      warmup_ratio: 0,
      lr_scheduler: "linear",
      full_finetune: mode === "full",
    },
    seed: 0,
    batchOrder: (count) => Array.from({ length: count }, (_, i) => i),
    microBatchSize: rows,
    validEvery: 0,
    onStep: (m) => void metrics.push(m),
  });
} catch (e) {
  error = (e as Error).message.split("\n")[0]!;
}
const timed = metrics
  .slice(1)
  .map((m) => m.step_ms)
  .sort((a, b) => a - b);
const median = timed.length ? timed[Math.floor((timed.length - 1) / 2)]! : Number.NaN;
const tokens = rows * seq;
const flops = trainingStepFlops(config, mode, rows, seq);
console.log(
  JSON.stringify({
    backend: `${backend.name}${backend.nativeMatmul ? "+openblas" : ""}`,
    mode,
    rows,
    seq,
    error,
    stepMsMedian: Math.round(median),
    stepsMs: metrics.map((m) => Math.round(m.step_ms)),
    tokensPerSec: Math.round((tokens / median) * 1000 * 10) / 10,
    gflopsPerSec: Math.round(flops / median / 1e6),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    estimatedPeakMiB: Math.round(estimate.totalBytes / 2 ** 20),
    gradientCheckpointing: estimate.gradientCheckpointing,
    loadMs: Math.round(loadMs),
    loss: metrics.map((m) => Number(m.train_loss.toFixed(4))),
  }),
);
process.exit(0);
