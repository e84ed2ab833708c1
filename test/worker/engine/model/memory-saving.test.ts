// Gradient checkpointing and the chunked LM head change where memory goes, never the numbers:
// losses and gradients with them on equal those of the plain path (full logits, every
// activation kept) within 1e-5, on the golden fixtures and on a ~25M-parameter model. Runs on
// whichever backend TFJS_BACKEND selects (CI runs it on tensorflow, wasm + OpenBLAS and pure wasm).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import type { TokenBatch } from "../../../../worker/engine/data/batch.js";
import { expectedWeightShapes } from "../../../../worker/engine/hf/checkpoint-layout.js";
import { parseModelConfig } from "../../../../worker/engine/hf/config.js";
import type { FloatTensorData } from "../../../../worker/engine/hf/safetensors.js";
import { CausalLM } from "../../../../worker/engine/model/causal-lm.js";
import { shiftLabels, tokenCrossEntropy } from "../../../../worker/engine/model/cross-entropy.js";
import { loadModel } from "../../../../worker/engine/model/load-model.js";
import { Rng } from "../../../../worker/engine/train/rng.js";
import { initTestBackend } from "../../../support/engine-backend.js";
import { padded } from "../../../support/padded-batch.js";

const fixtures = new URL("../../../fixtures", import.meta.url).pathname;

const backend = await initTestBackend();

function goldenBatch(dir: string): TokenBatch {
  const g = JSON.parse(readFileSync(path.join(dir, "golden.json"), "utf8")).batch;
  const rows = (g.input_ids as number[][]).map((ids, b) => ({
    ids: ids.slice(0, g.seq_lens[b]),
    labels: (g.labels[b] as number[]).slice(0, g.seq_lens[b]),
  }));
  return padded(rows);
}

interface Result {
  loss: number;
  correct: number;
  grads: Map<string, Float32Array>;
}

/** The memory-saving path: lossTerms as the training loop calls it. */
function savingPath(model: CausalLM, batch: TokenBatch, training: boolean): Result {
  let correct = 0;
  const { value, grads } = tf.variableGrads(() => {
    const terms = model.lossTerms(batch, { training });
    correct = terms.correct.dataSync()[0];
    terms.correct.dispose();
    // the training loop's normalisation: the mean over label tokens
    return tf.div(terms.lossSum, terms.tokenCount) as tf.Scalar;
  }, [...model.trainableParams.values()]);
  return collect(model, value, grads, correct);
}

/** The plain path: full [B·T, V] logits from forward(), per-token cross-entropy, no checkpointing. */
function plainPath(model: CausalLM, batch: TokenBatch, training: boolean): Result {
  const s = shiftLabels(batch.labels, batch.batchSize, batch.seqLen, model.config.vocabSize);
  let correct = 0;
  const { value, grads } = tf.variableGrads(() => {
    const logits = model.forward(batch, { training });
    const hit = tf.mul(
      tf.cast(tf.equal(tf.argMax(logits, 1), tf.tensor1d(s.targets, "int32")), "float32"),
      tf.tensor1d(s.weights),
    );
    correct = tf.sum(hit).dataSync()[0];
    return tf.div(tf.sum(tokenCrossEntropy(logits, s.targets, s.weights)), s.count) as tf.Scalar;
  }, [...model.trainableParams.values()]);
  return collect(model, value, grads, correct);
}

function collect(model: CausalLM, value: tf.Scalar, grads: tf.NamedTensorMap, correct: number): Result {
  const byVariable = new Map([...model.trainableParams].map(([name, v]) => [v.name, name]));
  const out = new Map<string, Float32Array>();
  for (const [k, g] of Object.entries(grads)) out.set(byVariable.get(k) ?? k, g.dataSync() as Float32Array);
  const loss = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads)]);
  return { loss, correct, grads: out };
}

function assertSame(a: Result, b: Result, tol: number, what: string): void {
  assert.ok(
    Math.abs(a.loss - b.loss) <= tol * Math.max(1, Math.abs(a.loss)),
    `${what}: loss ${a.loss} vs ${b.loss}`,
  );
  assert.equal(a.correct, b.correct, `${what}: correct`);
  assert.deepEqual([...a.grads.keys()].sort(), [...b.grads.keys()].sort());
  for (const [name, g] of a.grads) {
    const h = b.grads.get(name)!;
    let d = 0;
    for (let i = 0; i < g.length; i++) d = Math.max(d, Math.abs(g[i] - h[i]));
    assert.ok(d <= tol, `${what}: ${name} max |diff| ${d}`);
  }
}

function compare(model: CausalLM, batch: TokenBatch, training: boolean, what: string): void {
  const rng = model.rngState();
  const plain = plainPath(model, batch, training);
  for (const [checkpoint, chunk] of [
    [false, 3],
    [true, 512],
    [true, 5],
  ] as const) {
    model.setRngState(rng);
    model.gradientCheckpointing = checkpoint;
    model.lmHeadChunkTokens = chunk;
    assertSame(
      plain,
      savingPath(model, batch, training),
      1e-5,
      `${what} (checkpointing ${checkpoint}, chunk ${chunk})`,
    );
  }
  model.gradientCheckpointing = false;
}

test("golden fixtures, LoRA with dropout: checkpointing and chunked LM head change nothing", async () => {
  for (const name of ["llama", "qwen2", "mistral-swa"]) {
    const dir = path.join(fixtures, name);
    const model = await loadModel(dir, { lora: { r: 4, alpha: 8, dropout: 0.1 }, seed: 3 });
    const before = tf.memory().numTensors;
    compare(model, goldenBatch(dir), true, name);
    assert.equal(tf.memory().numTensors, before, `${name}: no tensors leak`);
    model.dispose();
  }
});

test("golden fixture, full fine-tuning (tied head trained through both of its uses)", async () => {
  const dir = path.join(fixtures, "qwen2");
  const model = await loadModel(dir, { fullFinetune: true });
  compare(model, goldenBatch(dir), true, "qwen2 full");
  model.dispose();
});

/** A random LLaMA-shaped model of about 25M parameters, untied head, built in memory. */
function mediumModel(fullFinetune: boolean): CausalLM {
  const raw = {
    architectures: ["LlamaForCausalLM"],
    vocab_size: 8192,
    hidden_size: 512,
    intermediate_size: 1376,
    num_hidden_layers: 6,
    num_attention_heads: 8,
    num_key_value_heads: 2,
    tie_word_embeddings: false,
  };
  const config = parseModelConfig(raw);
  const rng = Rng.fromSeed(11);
  const weights = new Map<string, FloatTensorData>();
  for (const [name, shape] of expectedWeightShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (shape.length === 1) data.fill(1);
    else for (let i = 0; i < n; i++) data[i] = (rng.nextFloat() * 2 - 1) * 0.035;
    weights.set(name, { dtype: "F32", shape, data });
  }
  return new CausalLM(config, weights, { folder: "medium", rawConfig: raw, fullFinetune });
}

// ~100 s on pure wasm (every matmul at ~2 GFLOP/s); the fixtures above cover that path
const slowMatmul = backend.linear === "explicit-transpose" && "pure wasm: too slow at 25M parameters";
test("a ~25M-parameter model: LoRA and full fine-tuning give the same loss and gradients", {
  skip: slowMatmul,
}, async () => {
  const rng = Rng.fromSeed(5);
  const rows = [0, 1].map(() => {
    const ids = Array.from({ length: 40 }, () => Math.floor(rng.nextFloat() * 8192));
    return { ids, labels: ids.map((id, t) => (t < 16 ? -100 : id)) };
  });
  const batch = padded(rows);
  const lora = mediumModel(false);
  assert.ok(lora.numBaseParameters() > 20e6 && lora.numBaseParameters() < 50e6);
  lora.attachLora({ r: 8, alpha: 16, dropout: 0.05 });
  compare(lora, batch, true, "25M LoRA");
  lora.dispose();
  const full = mediumModel(true);
  compare(full, batch, false, "25M full");
  full.dispose();
});
