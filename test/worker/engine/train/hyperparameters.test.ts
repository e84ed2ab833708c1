import assert from "node:assert/strict";
import { test } from "node:test";
import {
  autoBatchSize,
  autoEpochs,
  autoLearningRateMultiplier,
  HyperparameterError,
  peakLearningRate,
  resolveHyperparameters,
  validateHyperparameters,
} from "../../../../worker/engine/train/hyperparameters.js";

test("epochs follow OpenAI's cookbook rule", () => {
  assert.equal(autoEpochs(10), 10); // 30 < 100 → min(25, 100 // 10)
  assert.equal(autoEpochs(3), 25); // min(25, 33)
  assert.equal(autoEpochs(33), 3); // 99 < 100 → 100 // 33 = 3
  assert.equal(autoEpochs(34), 3);
  assert.equal(autoEpochs(8333), 3); // 24999
  assert.equal(autoEpochs(8334), 2); // 25002 > 25000 → 25000 // 8334 = 2
  assert.equal(autoEpochs(30000), 1);
});

test("batch size is the power of two below 0.2% of n, clamped to 1..8", () => {
  assert.equal(autoBatchSize(10), 1);
  assert.equal(autoBatchSize(999), 1);
  assert.equal(autoBatchSize(1000), 2);
  assert.equal(autoBatchSize(2500), 4);
  assert.equal(autoBatchSize(4000), 8);
  assert.equal(autoBatchSize(1_000_000), 8);
});

test("learning-rate multiplier scales with sqrt(batch / 8)", () => {
  assert.equal(autoLearningRateMultiplier(1), 0.35);
  assert.equal(autoLearningRateMultiplier(4), 0.71);
  assert.equal(autoLearningRateMultiplier(8), 1);
});

test("resolve fills autos and defaults, keeps explicit values, and names bad params", () => {
  const r = resolveHyperparameters({ n_epochs: "auto", batch_size: 4 }, 20);
  assert.equal(r.n_epochs, 5);
  assert.equal(r.batch_size, 4);
  assert.equal(r.learning_rate_multiplier, 0.71);
  assert.equal(r.lora_rank, 8);
  assert.equal(r.lora_alpha, 16);
  assert.equal(r.packing, true);
  assert.equal(r.lr_scheduler, "linear");
  assert.equal(r.target_modules.length, 7);
  assert.ok(Math.abs(peakLearningRate(r) - 2e-4 * 0.71) < 1e-15);
  assert.ok(Math.abs(peakLearningRate({ full_finetune: true, learning_rate_multiplier: 2 }) - 4e-5) < 1e-15);
  assert.throws(
    () => resolveHyperparameters({ batch_size: 0 }, 20),
    (e: unknown) => e instanceof HyperparameterError && e.param === "batch_size",
  );
  assert.throws(
    () => resolveHyperparameters({ target_modules: ["wq"] }, 20),
    (e: unknown) => e instanceof HyperparameterError && e.param === "target_modules",
  );
  assert.throws(() => resolveHyperparameters({}, 0), /training example/);
});

test("validate checks explicit values before the dataset is known", () => {
  validateHyperparameters({ n_epochs: "auto", batch_size: 16, lr_scheduler: "cosine" });
  assert.throws(
    () => validateHyperparameters({ warmup_ratio: 2 }),
    (e: unknown) => e instanceof HyperparameterError && e.param === "warmup_ratio",
  );
  assert.throws(
    () => validateHyperparameters({ lr_scheduler: "step" as never }),
    (e: unknown) => e instanceof HyperparameterError && e.param === "lr_scheduler",
  );
});
