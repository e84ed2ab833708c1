import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { parseModelConfig, UnsupportedModelError } from "../../../../worker/engine/hf/config.js";

const fixture = (name: string, file = "config.json") =>
  JSON.parse(readFileSync(new URL(`../../../fixtures/${name}/${file}`, import.meta.url), "utf8")) as Record<
    string,
    unknown
  >;

const base = fixture("llama");

describe("parseModelConfig", () => {
  test("reads the llama fixture: GQA, head_dim, untied head, default rope", () => {
    const c = parseModelConfig(base);
    assert.equal(c.architecture, "LlamaForCausalLM");
    assert.deepEqual([c.numHeads, c.numKvHeads, c.headDim, c.hiddenSize, c.numLayers], [4, 2, 16, 64, 2]);
    assert.equal(c.tieWordEmbeddings, false);
    assert.deepEqual(c.rope, { type: "default", theta: 10000 });
    assert.deepEqual(c.layerWindows, [null, null]);
    assert.equal(c.qkvBias, false);
    assert.deepEqual(c.eosTokenIds, [2]);
  });

  test("qwen2 has q/k/v bias (no o bias), tied head; its null sliding window is ignored", () => {
    const c = parseModelConfig(fixture("qwen2"));
    assert.equal(c.qkvBias, true);
    assert.equal(c.oBias, false);
    assert.equal(c.tieWordEmbeddings, true);
    assert.deepEqual(c.layerWindows, [null, null]);
  });

  test("mistral's sliding_window applies to every layer", () => {
    assert.deepEqual(parseModelConfig(fixture("mistral-swa")).layerWindows, [6, 6]);
  });

  test("llama3 rope parameters", () => {
    assert.deepEqual(parseModelConfig(fixture("llama3-rope")).rope, {
      type: "llama3",
      theta: 10000,
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 32,
    });
  });

  for (const name of ["llama", "qwen2", "llama3-rope", "mistral-swa"]) {
    test(`${name}: transformers-4 layout parses like the transformers-5 layout`, () => {
      const v5 = parseModelConfig(fixture(name));
      const v4 = parseModelConfig(fixture(name, "config.legacy.json"));
      assert.deepEqual(v4, v5);
    });
  }

  test("old rope_scaling with `type` instead of `rope_type`; linear and dynamic", () => {
    const linear = parseModelConfig({
      ...base,
      rope_parameters: undefined,
      rope_theta: 5e5,
      rope_scaling: { type: "linear", factor: 2 },
    });
    assert.deepEqual(linear.rope, { type: "linear", theta: 5e5, factor: 2 });
    const dynamic = parseModelConfig({
      ...base,
      rope_parameters: { rope_type: "dynamic", rope_theta: 1e4, factor: 4 },
    });
    assert.deepEqual(dynamic.rope, {
      type: "dynamic",
      theta: 1e4,
      factor: 4,
      originalMaxPositionEmbeddings: 512,
    });
  });

  test("head_dim defaults to hidden / heads; llama attention_bias and mlp_bias", () => {
    const c = parseModelConfig({ ...base, head_dim: undefined, attention_bias: true, mlp_bias: true });
    assert.equal(c.headDim, 16);
    assert.deepEqual([c.qkvBias, c.oBias, c.mlpBias], [true, true, true]);
  });

  test("qwen2 sliding window per layer from layer_types or max_window_layers", () => {
    const q = fixture("qwen2");
    const typed = parseModelConfig({
      ...q,
      use_sliding_window: true,
      sliding_window: 8,
      layer_types: ["full_attention", "sliding_attention"],
    });
    assert.deepEqual(typed.layerWindows, [null, 8]);
    const legacy = parseModelConfig({
      ...q,
      use_sliding_window: true,
      sliding_window: 8,
      layer_types: undefined,
      max_window_layers: 1,
    });
    assert.deepEqual(legacy.layerWindows, [null, 8]);
  });

  const refusals: [string, Record<string, unknown>, RegExp][] = [
    ["unknown architecture", { architectures: ["GPT2LMHeadModel"] }, /GPT2LMHeadModel/],
    ["no architectures", { architectures: undefined }, /architectures/],
    [
      "unknown rope type",
      { rope_parameters: { rope_type: "yarn", rope_theta: 1e4, factor: 2 } },
      /rope_type "yarn"/,
    ],
    [
      "llama3 rope without its factors",
      { rope_parameters: { rope_type: "llama3", rope_theta: 1e4, factor: 8 } },
      /low_freq_factor/,
    ],
    ["other activation", { hidden_act: "gelu" }, /hidden_act/],
    ["heads not a multiple of kv heads", { num_key_value_heads: 3 }, /num_key_value_heads/],
    ["missing hidden size", { hidden_size: undefined }, /hidden_size/],
    ["quantized", { quantization_config: { quant_method: "gptq" } }, /quantization_config/],
    ["partial rotary", { partial_rotary_factor: 0.5 }, /partial_rotary_factor/],
  ];
  for (const [what, patch, message] of refusals) {
    test(`refuses ${what}, naming the field`, () => {
      assert.throws(
        () => parseModelConfig({ ...base, ...patch }),
        (err: Error) => err instanceof UnsupportedModelError && message.test(err.message),
      );
    });
  }
});
