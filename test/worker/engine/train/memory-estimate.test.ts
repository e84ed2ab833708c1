import assert from "node:assert/strict";
import { test } from "node:test";
import { loadMemoryBudget } from "../../../../src/config.js";
import { parseModelConfig } from "../../../../worker/engine/hf/config.js";
import {
  baseParameterCount,
  CHECKPOINT_ACTIVATIONS_ABOVE,
  configuredMemoryBudget,
  estimateTrainingMemory,
  lmHeadChunkTokens,
  loraParameterCount,
  parseByteSize,
  type TrainingMemoryInput,
  trainingMemoryBudget,
  WASM_HEAP_BYTES,
} from "../../../../worker/engine/train/memory-estimate.js";

// The published shapes (config.json fields as on the Hugging Face hub)
const SMOLLM2_135M = parseModelConfig({
  architectures: ["LlamaForCausalLM"],
  vocab_size: 49152,
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  tie_word_embeddings: true,
});
const QWEN25_05B = parseModelConfig({
  architectures: ["Qwen2ForCausalLM"],
  vocab_size: 151936,
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  tie_word_embeddings: true,
});
const ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

function input(over: Partial<TrainingMemoryInput> = {}): TrainingMemoryInput {
  return {
    config: SMOLLM2_135M,
    method: "lora",
    loraRank: 8,
    loraTargets: ALL,
    microBatch: 4,
    seqLen: 256,
    backend: "tensorflow",
    ...over,
  };
}

const GB = 1e9;

test("parameter counts equal the published models'", () => {
  assert.equal(baseParameterCount(SMOLLM2_135M), 134_515_008);
  assert.equal(baseParameterCount(QWEN25_05B), 494_032_768);
  // PEFT's trainable count for r=8 on all seven projections (print_trainable_parameters)
  assert.equal(loraParameterCount(SMOLLM2_135M, 8, ALL), 2_442_240);
  assert.equal(loraParameterCount(QWEN25_05B, 8, ALL), 4_399_104);
  assert.equal(loraParameterCount(SMOLLM2_135M, 8, ["q_proj", "q_proj"]), 30 * 8 * (576 + 576));
});

test("the breakdown adds up and names each part", () => {
  const e = estimateTrainingMemory(input());
  const parts = Object.values(e.breakdown).reduce((a, b) => a + b, 0);
  assert.ok(e.totalBytes > parts, "runtime overhead comes on top of the tensors");
  assert.equal(e.breakdown.weights, 134_515_008 * 4);
  assert.equal(e.breakdown.optimizer, 2 * 2_442_240 * 4);
  assert.equal(e.gradientCheckpointing, true, "4 × 256 at this size checkpoints by itself");
});

test("real shapes land within the PyTorch peer's peak (4.9 GB and 7.6 GB)", () => {
  const small = estimateTrainingMemory(input());
  assert.ok(small.totalBytes < 4.9 * GB && small.totalBytes > 1.5 * GB, `${small.totalBytes}`);
  const qwen = estimateTrainingMemory(input({ config: QWEN25_05B, microBatch: 1, seqLen: 512 }));
  assert.ok(qwen.totalBytes < 7.6 * GB && qwen.totalBytes > 2.5 * GB, `${qwen.totalBytes}`);
});

test("logits are bounded by the LM-head chunk, not by tokens × vocab", () => {
  const short = estimateTrainingMemory(input({ config: QWEN25_05B, microBatch: 1, seqLen: 512 }));
  const long = estimateTrainingMemory(input({ config: QWEN25_05B, microBatch: 8, seqLen: 2048 }));
  assert.equal(short.breakdown.logits, long.breakdown.logits);
  assert.ok(short.breakdown.logits < 512 * 151936 * 4);
  assert.equal(lmHeadChunkTokens(151936), 110);
  assert.equal(lmHeadChunkTokens(10 ** 9), 1);
});

test("activations grow with micro-batch and sequence length; full fine-tuning costs more than LoRA", () => {
  const a = estimateTrainingMemory(input({ microBatch: 1 }));
  const b = estimateTrainingMemory(input({ microBatch: 2 }));
  const c = estimateTrainingMemory(input({ microBatch: 1, seqLen: 1024 }));
  assert.ok(b.breakdown.activations > 1.9 * a.breakdown.activations);
  assert.ok(c.breakdown.activations > 4 * a.breakdown.activations, "attention is quadratic in length");
  const full = estimateTrainingMemory(input({ method: "full" }));
  // AdamW's two moments, plus the step's transient copies (the embedding's dense gradient, the update terms)
  assert.ok(full.breakdown.optimizer === 5 * full.breakdown.weights);
  assert.ok(full.totalBytes > estimateTrainingMemory(input()).totalBytes + 2 * GB);
});

test("checkpointing turns on when the budget needs it, and cuts activations", () => {
  const small = input({ microBatch: 1, seqLen: 64 });
  const plain = estimateTrainingMemory(small);
  assert.equal(plain.gradientCheckpointing, false, "short rows of a small model run without");
  const roomy = estimateTrainingMemory({ ...small, budgetBytes: plain.totalBytes });
  assert.equal(roomy.gradientCheckpointing, false);
  const tight = estimateTrainingMemory({ ...small, budgetBytes: plain.totalBytes - 1 });
  assert.equal(tight.gradientCheckpointing, true);
  assert.ok(tight.breakdown.activations < plain.breakdown.activations / 3);
  assert.deepEqual(estimateTrainingMemory({ ...small, budgetBytes: 1, gradientCheckpointing: false }), plain);
});

test("real-size activations turn checkpointing on by themselves", () => {
  const auto = estimateTrainingMemory(input());
  assert.equal(auto.gradientCheckpointing, true);
  const off = estimateTrainingMemory(input({ gradientCheckpointing: false }));
  assert.ok(off.breakdown.activations > CHECKPOINT_ACTIVATIONS_ABOVE);
  assert.ok(auto.totalBytes < off.totalBytes / 2);
});

test("budgets: the wasm heap is 4 GiB at most; a configured budget (WORKER_MEMORY_BUDGET) wins", () => {
  assert.ok(trainingMemoryBudget("wasm").bytes <= WASM_HEAP_BYTES);
  assert.ok(trainingMemoryBudget("tensorflow").bytes > 0);
  const configured = configuredMemoryBudget("6G", "WORKER_MEMORY_BUDGET");
  assert.deepEqual(trainingMemoryBudget("tensorflow", configured), {
    bytes: 6 * 2 ** 30,
    source: "WORKER_MEMORY_BUDGET",
  });
  assert.deepEqual(loadMemoryBudget({ WORKER_MEMORY_BUDGET: "6G" }), configured);
  assert.equal(loadMemoryBudget({}), null);
  assert.equal(configuredMemoryBudget("lots", "WORKER_MEMORY_BUDGET"), null);
  assert.equal(parseByteSize("800M"), 800 * 2 ** 20);
  assert.equal(parseByteSize("4GiB"), 4 * 2 ** 30);
  assert.equal(parseByteSize("123"), 123);
  assert.equal(parseByteSize("lots"), null);
});
