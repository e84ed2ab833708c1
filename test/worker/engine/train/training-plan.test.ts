// The numbers a preflight gives before training: parameter counts from a config (checked
// against the golden fixtures' counts, made by transformers), the run's steps and token slots
// in the loop's own order, the throughput table's estimate, and the text of each `auto` rule.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { epochBatches } from "../../../../worker/engine/data/batch-order.js";
import { parseModelConfig } from "../../../../worker/engine/hf/config.js";
import {
  AUTO_RULES,
  explainAutoValues,
  resolveHyperparameters,
} from "../../../../worker/engine/train/hyperparameters.js";
import { countParameters } from "../../../../worker/engine/train/parameter-count.js";
import {
  estimateTrainingDuration,
  THROUGHPUT_TABLE,
} from "../../../../worker/engine/train/throughput-table.js";
import { planTraining } from "../../../../worker/engine/train/training-plan.js";

const FIXTURES = fileURLToPath(new URL("../../../fixtures", import.meta.url));

describe("training plan", () => {
  it("counts parameters as transformers does for every golden fixture", async () => {
    const expected: Record<string, number> = {
      llama: 123_200,
      qwen2: 98_880,
      "llama3-rope": 98_624,
      "mistral-swa": 123_200,
    };
    for (const [name, params] of Object.entries(expected)) {
      const config = parseModelConfig(
        JSON.parse(await readFile(join(FIXTURES, name, "config.json"), "utf8")),
      );
      assert.equal(countParameters(config), params, name);
    }
  });

  it("counts steps and the slots of each micro-batch (padded to its longest row) in the loop's order", () => {
    const rowLengths = [10, 20, 30, 40, 50];
    const one = planTraining({
      rowLengths,
      validationRowLengths: [],
      batchSize: 2,
      nEpochs: 3,
      microBatchSize: 1,
      seed: 5,
    });
    assert.deepEqual([one.stepsPerEpoch, one.totalSteps], [3, 9]);
    assert.equal(one.trainSlots, 3 * 150, "one row per micro-batch: no padding");
    assert.equal(one.passSlots.length, 15);
    const two = planTraining({
      rowLengths,
      validationRowLengths: [],
      batchSize: 2,
      nEpochs: 2,
      microBatchSize: 4,
      seed: 5,
    });
    let slots = 0;
    for (const epoch of [0, 1]) {
      for (const batch of epochBatches(5, 2, epoch, 5))
        slots += batch.length * Math.max(...batch.map((r) => rowLengths[r]));
    }
    assert.equal(two.trainSlots, slots);
    assert.equal(two.evalSlots, 0);
    const valid = planTraining({
      rowLengths,
      validationRowLengths: [7, 9],
      batchSize: 5,
      nEpochs: 10,
      microBatchSize: 4,
      seed: 1,
    });
    // 10 steps: a sample every step (2 rows × longest 9), then the full pass (2 × 9)
    assert.equal(valid.evalSlots, 10 * 18 + 18);
  });

  it("estimates duration from the measured rows, interpolating between sizes by FLOP rate", () => {
    const row = THROUGHPUT_TABLE.find((r) => r.method === "lora" && r.backend === "wasm")!;
    const at = estimateTrainingDuration({
      params: row.params,
      method: "lora",
      backend: "wasm",
      // ten benchmark-sized passes take ten benchmark steps
      passSlots: Array(10).fill(row.slotsPerPass),
      evalSlots: 0,
    })!;
    assert.ok(Math.abs(at.seconds - (10 * row.slotsPerPass) / row.tokensPerSecond) < 1e-9);
    assert.match(at.source, /^measured: llama fixture/);
    assert.doesNotMatch(at.source, /floor/);
    // many tiny passes cost the per-pass floor (the smallest model's whole step), not their tokens
    const tiny = estimateTrainingDuration({
      params: row.params,
      method: "lora",
      backend: "wasm",
      passSlots: Array(100).fill(16),
      evalSlots: 0,
    })!;
    assert.ok(Math.abs(tiny.seconds - (100 * row.slotsPerPass) / row.tokensPerSecond) < 1e-9);
    assert.match(
      tiny.source,
      /100 of 100 passes counted at the per-pass floor of \d+ ms \(llama fixture's 1024-slot step\)/,
    );
    const sizes = THROUGHPUT_TABLE.filter((r) => r.method === "lora").map((r) => r.params);
    const mid = Math.round(Math.sqrt(Math.min(...sizes) * Math.max(...sizes)));
    const between = estimateTrainingDuration({
      params: mid,
      method: "lora",
      backend: "wasm",
      passSlots: Array(1000).fill(1000),
      evalSlots: 0,
    })!;
    assert.match(
      between.source,
      /interpolated by FLOPs ≈ 6·params·tokens between llama fixture .* and gpt-3\.7M/,
    );
    const rates = THROUGHPUT_TABLE.filter((r) => r.method === "lora").map((r) => r.tokensPerSecond);
    assert.ok(between.tokensPerSecond < Math.max(...rates) && between.tokensPerSecond > Math.min(...rates));
    const gpu = estimateTrainingDuration({
      params: mid,
      method: "full",
      backend: "tensorflow",
      passSlots: Array(1000).fill(1000),
      evalSlots: 1e6,
    })!;
    assert.match(gpu.source, /^no figures measured on backend 'tensorflow'; wasm figures used/);
  });

  it("explains each value an `auto` rule chose, with the rule's own text", () => {
    const input = { batch_size: 4 };
    const hp = resolveHyperparameters(input, 20);
    const why = explainAutoValues(input, hp, 20);
    assert.deepEqual(Object.keys(why).sort(), ["learning_rate_multiplier", "lora_alpha", "n_epochs"]);
    assert.equal(why.n_epochs, `${AUTO_RULES.n_epochs}; n = 20 → 5`);
    assert.equal(why.learning_rate_multiplier, `${AUTO_RULES.learning_rate_multiplier}; batch_size 4 → 0.71`);
    assert.deepEqual(
      explainAutoValues(
        { n_epochs: 2, batch_size: 1, learning_rate_multiplier: 1, full_finetune: true },
        resolveHyperparameters(
          { n_epochs: 2, batch_size: 1, learning_rate_multiplier: 1, full_finetune: true },
          5,
        ),
        5,
      ),
      {},
    );
  });
});
