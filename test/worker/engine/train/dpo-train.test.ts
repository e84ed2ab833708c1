// DPO through the training loop on each fixture architecture: the loss starts at ln 2 (a fresh
// adapter is the reference), and a few steps make the preferred answers more likely than the
// reference does: the implicit reward margin over the pairs turns positive and grows.
import assert from "node:assert/strict";
import path from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { EncodedPreference } from "../../../../worker/engine/data/encode-preference.js";
import { loadModel } from "../../../../worker/engine/model/load-model.js";
import { dpoObjective, referenceLogprobs } from "../../../../worker/engine/train/dpo-objective.js";
import { Rng } from "../../../../worker/engine/train/rng.js";
import { evaluateObjective, type StepMetrics, train } from "../../../../worker/engine/train/train-loop.js";
import { useBackend } from "./train-fixture.js";

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../../fixtures");

function syntheticPairs(n: number, seed: number): EncodedPreference[] {
  const rng = Rng.fromSeed(seed);
  const ids = (len: number) => Int32Array.from({ length: len }, () => 3 + rng.nextInt(380));
  return Array.from({ length: n }, () => {
    const chosen = ids(3 + rng.nextInt(4));
    const rejected = ids(3 + rng.nextInt(4));
    return {
      promptIds: Int32Array.from([1, ...ids(4 + rng.nextInt(4))]),
      chosenIds: chosen,
      chosenLabels: chosen,
      rejectedIds: rejected,
      rejectedLabels: rejected,
    };
  });
}

before(async () => {
  await useBackend();
});

describe("DPO training on the fixture architectures", () => {
  for (const name of ["llama", "qwen2", "mistral-swa", "llama3-rope"]) {
    test(name, async () => {
      const model = await loadModel(path.join(FIXTURES, name), {
        lora: { r: 4, alpha: 8, dropout: 0 },
        seed: 3,
      });
      try {
        const pairs = syntheticPairs(8, 11);
        const reference = await referenceLogprobs(model, pairs, 0);
        const settings = { beta: 0.1, lossType: "sigmoid" as const, rpoAlpha: null };
        const objective = dpoObjective(model, pairs, reference, settings, 0);
        const all = pairs.map((_, i) => i);
        const before = (await evaluateObjective(objective, all, 4))!;
        assert.ok(Math.abs(before.loss - Math.LN2) < 1e-5, `fresh adapter: loss ${before.loss} = ln 2`);
        assert.equal(before.metrics.rewards_margins, 0);
        const steps: StepMetrics[] = [];
        const result = await train({
          model,
          train: objective,
          hyperparameters: {
            n_epochs: 4,
            batch_size: 4,
            learning_rate_multiplier: 25,
            warmup_ratio: 0,
            lr_scheduler: "constant",
            full_finetune: false,
          },
          seed: 5,
          microBatchSize: 2,
          onStep: (m) => {
            steps.push(m);
          },
        });
        assert.equal(result.status, "completed");
        assert.equal(steps.length, 8);
        for (const key of [
          "train_rewards_chosen",
          "train_rewards_rejected",
          "train_rewards_accuracies",
          "train_rewards_margins",
        ])
          assert.equal(typeof steps[0]!.extra[key], "number", key);
        assert.ok(Math.abs(steps[0]!.train_loss - Math.LN2) < 1e-5);
        const mid = (await evaluateObjective(objective, all, 4))!;
        assert.ok(mid.metrics.rewards_margins! > 0, `margin ${mid.metrics.rewards_margins}`);
        await train({
          model,
          train: objective,
          hyperparameters: {
            n_epochs: 4,
            batch_size: 4,
            learning_rate_multiplier: 25,
            warmup_ratio: 0,
            lr_scheduler: "constant",
            full_finetune: false,
          },
          seed: 6,
          microBatchSize: 4,
        });
        const after = (await evaluateObjective(objective, all, 4))!;
        assert.ok(
          after.metrics.rewards_margins! > mid.metrics.rewards_margins!,
          `margin grows: ${mid.metrics.rewards_margins} → ${after.metrics.rewards_margins}`,
        );
        assert.ok(after.loss < before.loss);
      } finally {
        model.dispose();
      }
    });
  }
});
