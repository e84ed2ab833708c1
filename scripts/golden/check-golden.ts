// Golden parity: run every check of a fixture folder (golden.json, schema_version 1, written by
// Hugging Face transformers + PEFT; and dpo.json when present, TRL's DPO convention; see
// test/fixtures/README.md) against our engine.
//
//   npm run check:golden -- test/fixtures/llama [more fixture dirs…]
//
// prints one line per check with its max error and tolerance, and exits non-zero if any fails.
// The test suite calls runGoldenChecks() on the four fixtures in test/fixtures.

import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import type { TokenBatch } from "../../worker/engine/data/batch.js";
import { generate } from "../../worker/engine/generation/generate.js";
import { parseModelConfig } from "../../worker/engine/hf/config.js";
import { readSafetensorsHeader } from "../../worker/engine/hf/safetensors.js";
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from "../../worker/engine/lora/adapter-io.js";
import { buildAllowedMask } from "../../worker/engine/model/attention-mask.js";
import type { CausalLM } from "../../worker/engine/model/causal-lm.js";
import { loadModel } from "../../worker/engine/model/load-model.js";
import { chunk } from "../../worker/engine/train/evaluate-objective.js";
import { sftObjective } from "../../worker/engine/train/sft-objective.js";
import { hasDpoGolden, runDpoChecks } from "./check-golden-dpo.js";
import { goldenAdamW } from "./golden-adamw.js";
import { disposeStep, stepGradients } from "./step-gradients.js";

/** Tolerances from test/fixtures/README.md ("Suggested tolerances for a float32 implementation"). */
export const TOLERANCES = {
  logits: 1e-4,
  loss: 1e-5,
  /** relative to the tensor's max |value| (and to each norm) */
  gradRelative: 1e-3,
  adamwLoss: 1e-4,
} as const;

export interface GoldenCheck {
  fixture: string;
  name: string;
  maxError: number;
  tolerance: number;
  passed: boolean;
  detail?: string;
}

// golden.json is external data, checked field by field where used
type Golden = any;

function check(
  fixture: string,
  name: string,
  maxError: number,
  tolerance: number,
  detail?: string,
): GoldenCheck {
  return {
    fixture,
    name,
    maxError,
    tolerance,
    passed: Number.isFinite(maxError) && maxError <= tolerance,
    detail,
  };
}

/** A TokenBatch from golden rows: real tokens segment 0, pads segment -1, positions 0…T-1. */
function paddedBatch(inputIds: number[][], attentionMask: number[][], labels: number[][]): TokenBatch {
  const B = inputIds.length;
  const T = inputIds[0].length;
  return {
    batchSize: B,
    seqLen: T,
    inputIds: Int32Array.from(inputIds.flat()),
    labels: Int32Array.from(labels.flat()),
    positionIds: Int32Array.from({ length: B * T }, (_, i) => i % T),
    segmentIds: Int32Array.from(attentionMask.flat().map((m) => (m ? 0 : -1))),
  };
}

/** max |ours[b·T + t][v] − ref[b][t][v]| over positions where `use(b, t)`. */
function maxLogitDiff(
  ours: Float32Array,
  ref: number[][][],
  T: number,
  V: number,
  use: (b: number, t: number) => boolean,
): number {
  let max = 0;
  ref.forEach((rows, b) => {
    rows.forEach((row, t) => {
      if (!use(b, t)) return;
      const base = (b * T + t) * V;
      for (let v = 0; v < V; v++) max = Math.max(max, Math.abs(ours[base + v] - row[v]));
    });
  });
  return max;
}

async function logitsOf(model: CausalLM, batch: TokenBatch): Promise<Float32Array> {
  const t = model.forward(batch);
  const data = (await t.data()) as Float32Array;
  t.dispose();
  return data;
}

async function meanLoss(model: CausalLM, batch: TokenBatch): Promise<number> {
  const r = await model.evaluate(batch);
  return r.lossSum / r.tokenCount;
}

function relativeMaxDiff(ours: Float32Array, ref: number[]): number {
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
    maxDiff = Math.max(maxDiff, Math.abs(ours[i] - ref[i]));
  }
  return maxDiff / (maxRef || 1);
}

/**
 * The training loop's gradients (computeGradients, dropout as in training) of the mean masked
 * loss over every row of `batch`, cut into micro-batches of `microBatchRows` rows.
 */
async function trainingGradients(model: CausalLM, batch: TokenBatch, microBatchRows: number) {
  const objective = sftObjective(model, batch);
  const rows = Array.from({ length: batch.batchSize }, (_, i) => i);
  const micro = chunk(rows, microBatchRows).map((part) => objective.select(part));
  return stepGradients(model, objective, micro);
}

/** Relative errors of our LoRA gradients against golden.json's (per-tensor norms, total norm, full tensors). */
async function loraGradientErrors(
  grads: tf.NamedTensorMap,
  lora: Golden,
): Promise<{ norms: number; totalNorm: number; full: number; unexpected: string[] }> {
  let norms = 0;
  let sumSquares = 0;
  for (const [key, ref] of Object.entries(lora.grad_norms as Record<string, number>)) {
    const grad = grads[key];
    if (!grad) {
      norms = Number.POSITIVE_INFINITY;
      continue;
    }
    const sq = tf.tidy(() => tf.sum(tf.square(grad)));
    const n = Math.sqrt((await sq.data())[0]);
    sq.dispose();
    sumSquares += n * n;
    norms = Math.max(norms, Math.abs(n - ref) / (Math.abs(ref) || 1));
  }
  const totalNorm = Math.abs(Math.sqrt(sumSquares) - lora.total_grad_norm) / lora.total_grad_norm;
  let full = 0;
  for (const [key, ref] of Object.entries(lora.grads as Record<string, number[][]>)) {
    const grad = grads[key];
    full = Math.max(
      full,
      grad ? relativeMaxDiff((await grad.data()) as Float32Array, ref.flat()) : Number.POSITIVE_INFINITY,
    );
  }
  const unexpected = Object.keys(grads).filter((k) => !(k in lora.grad_norms));
  return { norms, totalNorm, full, unexpected };
}

async function sha256(file: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(file))
    .digest("hex");
}

/** Every check for one fixture folder. Loads the model a few times; a tiny fixture takes seconds. */
export async function runGoldenChecks(dir: string): Promise<GoldenCheck[]> {
  const fixture = path.basename(path.resolve(dir));
  const golden: Golden = JSON.parse(await readFile(path.join(dir, "golden.json"), "utf8"));
  if (golden.schema_version !== 1)
    throw new Error(`${dir}/golden.json: schema_version ${golden.schema_version}, expected 1`);
  const results: GoldenCheck[] = [];
  const add = (name: string, maxError: number, tolerance: number, detail?: string) => {
    results.push(check(fixture, name, maxError, tolerance, detail));
  };
  const g = golden.batch;
  const batch = paddedBatch(g.input_ids, g.attention_mask, g.labels);
  const T = batch.seqLen;
  const V = golden.model.config.vocab_size as number;
  const real = (b: number, t: number) => g.attention_mask[b][t] === 1;

  const model = await loadModel(dir);
  try {
    // config: both layouts parse to the same ModelConfig and the same logits
    const legacyRaw = JSON.parse(await readFile(path.join(dir, "config.legacy.json"), "utf8"));
    const parsedNew = { ...parseModelConfig(golden.model.config), savedDtype: null };
    const parsedLegacy = { ...parseModelConfig(legacyRaw), savedDtype: null };
    add(
      "config.legacy.json parses equal to config.json",
      JSON.stringify(parsedNew) === JSON.stringify(parsedLegacy) ? 0 : 1,
      0,
    );

    // float32 logits and masked loss on the padded batch
    const logits = await logitsOf(model, batch);
    add(
      "logits float32 (padded batch, real positions)",
      maxLogitDiff(logits, g.logits, T, V, real),
      TOLERANCES.logits,
    );
    const loss = await meanLoss(model, batch);
    add("masked loss float32", Math.abs(loss - g.loss), TOLERANCES.loss);
    const evaluated = await model.evaluate(batch);
    add("masked loss token count", Math.abs(evaluated.tokenCount - g.loss_num_tokens), 0);

    // padding: row 1 alone equals row 1 inside the padded batch (and the golden row)
    const len1 = g.seq_lens[1] as number;
    const alone = paddedBatch(
      [g.input_ids[1].slice(0, len1)],
      [Array(len1).fill(1)],
      [g.labels[1].slice(0, len1)],
    );
    const aloneLogits = await logitsOf(model, alone);
    add(
      "padded row equals the row run alone",
      maxLogitDiff(aloneLogits, [g.logits[1].slice(0, len1)], len1, V, () => true),
      TOLERANCES.logits,
    );

    // legacy config loads to the same logits
    const legacy = await loadModel(dir, { configFile: "config.legacy.json" });
    try {
      const legacyLogits = await logitsOf(legacy, batch);
      let d = 0;
      for (let i = 0; i < legacyLogits.length; i++) d = Math.max(d, Math.abs(legacyLogits[i] - logits[i]));
      add("legacy config logits equal config.json logits", d, 1e-6);
    } finally {
      legacy.dispose();
    }

    // bf16 weights widened to float32
    const bf16 = await loadModel(dir, { weightsFile: golden.bf16.file ?? "model.bf16.safetensors" });
    try {
      add(
        "logits bf16 weights",
        maxLogitDiff(await logitsOf(bf16, batch), golden.bf16.logits, T, V, real),
        TOLERANCES.logits,
      );
      add(
        "masked loss bf16 weights",
        Math.abs((await meanLoss(bf16, batch)) - golden.bf16.loss),
        TOLERANCES.loss,
      );
    } finally {
      bf16.dispose();
    }

    // packing: block-diagonal causal mask from segment ids, positions restarting
    const p = golden.packed;
    const P = p.input_ids[0].length as number;
    const packed: TokenBatch = {
      batchSize: 1,
      seqLen: P,
      inputIds: Int32Array.from(p.input_ids.flat()),
      labels: Int32Array.from(p.labels.flat()),
      positionIds: Int32Array.from(p.position_ids.flat()),
      segmentIds: Int32Array.from(p.segment_ids.flat()),
    };
    const window = model.config.layerWindows.find((w) => w !== null) ?? null;
    const allowed = buildAllowedMask(packed, window);
    let maskMismatches = 0;
    for (let q = 0; q < P; q++)
      for (let k = 0; k < P; k++) if (allowed[q * P + k] !== p.allowed_mask[q][k]) maskMismatches++;
    add("packed allowed-mask equals golden (mismatches)", maskMismatches, 0);
    const packedLogits = await logitsOf(model, packed);
    const segmentRows: number[][] = (p.segment_logits as number[][][]).flat();
    add(
      "packed row logits equal separate segments",
      maxLogitDiff(packedLogits, [segmentRows], P, V, () => true),
      TOLERANCES.logits,
    );
    add("packed loss", Math.abs((await meanLoss(model, packed)) - p.loss), TOLERANCES.loss);

    // greedy generation with the KV cache
    const gen = golden.generate;
    const out = await generate(model, gen.prompt_ids, {
      maxNewTokens: gen.max_new_tokens,
      temperature: 0,
      keepLogits: true,
    });
    const idMismatches =
      (gen.generated_ids as number[]).filter((id, i) => out.ids[i] !== id).length +
      Math.abs(out.ids.length - gen.generated_ids.length);
    add("greedy generation ids (mismatches)", idMismatches, 0, `ours ${JSON.stringify(out.ids)}`);
    let stepDiff = 0;
    (gen.step_logits as number[][]).forEach((row, s) => {
      const ours = out.stepLogits?.[s];
      if (!ours) stepDiff = Number.POSITIVE_INFINITY;
      else for (let v = 0; v < V; v++) stepDiff = Math.max(stepDiff, Math.abs(ours[v] - row[v]));
    });
    add("greedy generation step logits (KV cache)", stepDiff, TOLERANCES.logits);

    // LoRA: the fixture's PEFT adapter
    const lora = golden.lora;
    const adapterDir = path.join(dir, lora.adapter_dir ?? "adapter");
    await model.loadAdapter(adapterDir);
    add("LoRA scaling", Math.abs((model.loraSettings?.scaling ?? Number.NaN) - lora.scaling), 0);
    add(
      "LoRA logits",
      maxLogitDiff(await logitsOf(model, batch), lora.logits, T, V, real),
      TOLERANCES.logits,
    );
    add("LoRA masked loss", Math.abs((await meanLoss(model, batch)) - lora.loss), TOLERANCES.loss);

    // gradients through the training loop's own path (computeGradients), the whole batch as one micro-batch
    const whole = await trainingGradients(model, batch, batch.batchSize);
    const grads = whole.grads!;
    const errors = await loraGradientErrors(grads, lora);
    add(
      "LoRA grad norms, all tensors (relative)",
      errors.unexpected.length ? Number.POSITIVE_INFINITY : errors.norms,
      TOLERANCES.gradRelative,
      errors.unexpected.length ? `unexpected grads ${errors.unexpected.join(", ")}` : undefined,
    );
    add("LoRA total grad norm (relative)", errors.totalNorm, TOLERANCES.gradRelative);
    add("LoRA layer-0 q_proj full gradients (relative)", errors.full, TOLERANCES.gradRelative);
    disposeStep(whole);
    // the same gradients accumulated over one-row micro-batches, with gradient checkpointing and an
    // LM head chunked every few tokens: how a memory-tight job trains
    const saved = { checkpointing: model.gradientCheckpointing, chunk: model.lmHeadChunkTokens };
    model.gradientCheckpointing = true;
    model.lmHeadChunkTokens = 5;
    const accumulated = await trainingGradients(model, batch, 1);
    [model.gradientCheckpointing, model.lmHeadChunkTokens] = [saved.checkpointing, saved.chunk];
    const acc = await loraGradientErrors(accumulated.grads!, lora);
    disposeStep(accumulated);
    add(
      "LoRA gradients, 1-row micro-batches + gradient checkpointing + chunked LM head (relative)",
      acc.unexpected.length ? Number.POSITIVE_INFINITY : Math.max(acc.norms, acc.totalNorm, acc.full),
      TOLERANCES.gradRelative,
    );

    // adapter round trip: write ours after loading PEFT's, compare layout, reload, compare logits
    const tmp = await mkdtemp(path.join(tmpdir(), "golden-adapter-"));
    try {
      await model.saveAdapter(tmp, lora.adapter_config_json.base_model_name_or_path);
      const theirs = await readSafetensorsHeader(path.join(adapterDir, ADAPTER_WEIGHTS_FILE));
      const ours = await readSafetensorsHeader(path.join(tmp, ADAPTER_WEIGHTS_FILE));
      const layout = (h: typeof ours) =>
        JSON.stringify({
          metadata: h.metadata,
          tensors: [...h.tensors].sort(([a], [b]) => (a < b ? -1 : 1)),
        });
      add(
        "adapter safetensors names/shapes/dtypes/offsets/metadata equal PEFT's",
        layout(ours) === layout(theirs) ? 0 : 1,
        0,
      );
      const same =
        (await sha256(path.join(tmp, ADAPTER_WEIGHTS_FILE))) ===
        (await sha256(path.join(adapterDir, ADAPTER_WEIGHTS_FILE)));
      add("adapter safetensors bytes identical to PEFT's", same ? 0 : 1, 0);
      const ourConfig = JSON.parse(await readFile(path.join(tmp, ADAPTER_CONFIG_FILE), "utf8"));
      const theirConfig = lora.adapter_config_json;
      const keysOurs = Object.keys(ourConfig).sort().join(",");
      const keysTheirs = Object.keys(theirConfig).sort().join(",");
      const normalised = (c: Record<string, unknown>) =>
        JSON.stringify(
          { ...c, target_modules: [...(c.target_modules as string[])].sort() },
          Object.keys(c).sort(),
        );
      add("adapter_config.json keys equal PEFT's", keysOurs === keysTheirs ? 0 : 1, 0);
      add(
        "adapter_config.json values equal PEFT's",
        normalised(ourConfig) === normalised(theirConfig) ? 0 : 1,
        0,
      );
      const reloaded = await loadModel(dir, { adapterDir: tmp });
      try {
        const a = await logitsOf(reloaded, batch);
        const b = await logitsOf(model, batch);
        let d = 0;
        for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
        add("adapter reload logits equal", d, 0);
      } finally {
        reloaded.dispose();
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }

    // three full-batch AdamW steps on the LoRA tensors
    const cfg = lora.adamw;
    const opt = goldenAdamW(cfg);
    const losses = [await meanLoss(model, batch)];
    for (let s = 0; s < cfg.steps; s++) {
      const step = await trainingGradients(model, batch, batch.batchSize);
      opt.applyGradients(model.trainableParams, step.grads!, cfg.lr);
      disposeStep(step);
      losses.push(await meanLoss(model, batch));
    }
    opt.dispose();
    const adamErr = Math.max(...(cfg.losses as number[]).map((l, i) => Math.abs(l - losses[i])));
    add(
      "AdamW losses after 0..3 steps",
      adamErr,
      TOLERANCES.adamwLoss,
      `ours ${losses.map((l) => l.toFixed(6)).join(" ")}`,
    );
  } finally {
    model.dispose();
  }
  if (await hasDpoGolden(dir)) {
    for (const c of await runDpoChecks(dir)) add(c.name, c.maxError, c.tolerance, c.detail);
  }
  return results;
}

export function formatCheck(c: GoldenCheck): string {
  const status = c.passed ? "ok  " : "FAIL";
  return `${status} ${c.fixture}: ${c.name}: max error ${c.maxError.toExponential(2)} (tolerance ${c.tolerance})${c.detail && !c.passed ? ` — ${c.detail}` : ""}`;
}

/** Use the project's backend choice when available, else tfjs's cpu backend. */
export async function initGoldenBackend(): Promise<string> {
  try {
    const { initBackend } = await import("../../worker/engine/backend/backend.js");
    const { loadBackendOptions } = await import("../../src/config.js");
    const info = await initBackend(loadBackendOptions());
    return `${info.name}${info.nativeMatmul ? " + native matmul" : ""}`;
  } catch (err) {
    await import("@tensorflow/tfjs-backend-cpu");
    await tf.setBackend("cpu");
    return `cpu (backend.ts unavailable: ${(err as Error).message})`;
  }
}

async function main(argv: string[]): Promise<number> {
  const dirs = argv.filter((a) => a !== "--");
  if (dirs.length === 0) {
    console.error("usage: npm run check:golden -- <fixture dir> [more dirs…]");
    return 2;
  }
  console.log(`backend: ${await initGoldenBackend()}`);
  let failed = 0;
  for (const dir of dirs) {
    for (const c of await runGoldenChecks(dir)) {
      console.log(formatCheck(c));
      if (!c.passed) failed++;
    }
  }
  console.log(failed === 0 ? "all golden checks passed" : `${failed} golden check(s) failed`);
  return failed === 0 ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
