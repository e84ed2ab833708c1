// Golden parity with Hugging Face transformers + PEFT on the four fixtures (test/fixtures/README.md),
// on whatever backend initBackend() picks here (wasm + native matmul, wasm, or cpu).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { before, describe, test } from "node:test";
import { formatCheck, initGoldenBackend, runGoldenChecks } from "../../../scripts/golden/check-golden.js";

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
  "LoRA gradients, 1-row micro-batches + gradient checkpointing + chunked LM head",
  "adapter safetensors names/shapes",
  "adapter reload logits equal",
  "AdamW losses after 0..3 steps",
  ...["fixture_adapter_beta_0.1", "fixture_adapter_beta_0.5", "peft_init_beta_0.1"].flatMap((c) => [
    `DPO ${c}: policy and reference log-probs`,
    `DPO ${c}: per-pair and mean loss`,
    `DPO ${c}: rewards, accuracy and margin`,
  ]),
  "DPO fixture_adapter_beta_0.1: LoRA grad norms",
  "DPO fixture_adapter_beta_0.1: LoRA grad norms, one pair per micro-batch",
  "DPO fixture_adapter_beta_0.5: AdamW losses after 0..3 steps",
];

before(async () => {
  await initGoldenBackend();
});

describe("golden parity with transformers + PEFT", () => {
  for (const name of FIXTURES) {
    test(name, async () => {
      const checks = await runGoldenChecks(new URL(`../../fixtures/${name}`, import.meta.url).pathname);
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

describe("npm run check:golden", () => {
  test("prints one line per check and exits non-zero when a reference number is off", async () => {
    const tmp = await mkdtemp(path.join(tmpdir(), "check-golden-cli-"));
    try {
      const bad = path.join(tmp, "llama-perturbed");
      await cp(new URL("../../fixtures/llama", import.meta.url).pathname, bad, { recursive: true });
      const golden = JSON.parse(await readFile(path.join(bad, "golden.json"), "utf8"));
      golden.batch.loss += 0.01;
      await writeFile(path.join(bad, "golden.json"), JSON.stringify(golden));
      const dpo = JSON.parse(await readFile(path.join(bad, "dpo.json"), "utf8"));
      dpo.cases["fixture_adapter_beta_0.1"].loss += 0.01;
      await writeFile(path.join(bad, "dpo.json"), JSON.stringify(dpo));
      const run = (dir: string) =>
        spawnSync(process.execPath, ["--import", "tsx", "scripts/golden/check-golden.ts", dir], {
          encoding: "utf8",
        });
      const failing = run(bad);
      assert.equal(failing.status, 1, failing.stderr);
      assert.match(failing.stdout, /^FAIL llama-perturbed: masked loss float32: max error 1\.00e-2/m);
      assert.match(failing.stdout, /^ok {3}llama-perturbed: logits float32/m);
      assert.match(
        failing.stdout,
        /^FAIL llama-perturbed: DPO fixture_adapter_beta_0\.1: per-pair and mean loss: max error 1\.00e-2/m,
      );
      assert.match(
        failing.stdout,
        /^ok {3}llama-perturbed: DPO fixture_adapter_beta_0\.5: per-pair and mean loss/m,
      );
      assert.match(failing.stdout, /2 golden check\(s\) failed/);
      const passing = run(new URL("../../fixtures/qwen2", import.meta.url).pathname);
      assert.equal(passing.status, 0, passing.stdout + passing.stderr);
      assert.match(passing.stdout, /all golden checks passed/);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
