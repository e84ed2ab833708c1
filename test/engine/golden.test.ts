// Golden parity with Hugging Face transformers + PEFT on the four fixtures (test/fixtures/README.md),
// on whatever backend initBackend() picks here (wasm + native matmul, wasm, or cpu).
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { formatCheck, initGoldenBackend, runGoldenChecks } from "../../worker/engine/check-golden.js";

const FIXTURES = ["llama", "qwen2", "llama3-rope", "mistral-swa"];
const EXPECTED_CHECKS = [
  "logits float32",
  "masked loss float32",
  "padded row equals the row run alone",
  "legacy config logits equal",
  "logits bf16 weights",
  "packed row logits equal separate segments",
  "packed loss",
  "greedy generation ids",
  "greedy generation step logits",
  "LoRA logits",
  "LoRA grad norms",
  "LoRA total grad norm",
  "LoRA layer-0 q_proj full gradients",
  "adapter safetensors names/shapes",
  "adapter reload logits equal",
  "AdamW losses after 0..3 steps",
];

before(async () => {
  await initGoldenBackend();
});

describe("golden parity with transformers + PEFT", () => {
  for (const name of FIXTURES) {
    test(name, async () => {
      const checks = await runGoldenChecks(new URL(`../fixtures/${name}`, import.meta.url).pathname);
      for (const expected of EXPECTED_CHECKS) {
        assert.ok(
          checks.some((c) => c.name.startsWith(expected)),
          `check "${expected}" ran`,
        );
      }
      const failed = checks.filter((c) => !c.passed);
      assert.deepEqual(failed.map(formatCheck), []);
    });
  }
});
