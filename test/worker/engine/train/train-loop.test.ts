import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import type { TokenBatch } from "../../../../worker/engine/data/batch.js";
import type { CausalLM } from "../../../../worker/engine/model/causal-lm.js";
import { loadModel } from "../../../../worker/engine/model/load-model.js";
import { AdamW } from "../../../../worker/engine/train/adamw.js";
import { decodeCheckpoint } from "../../../../worker/engine/train/checkpoint-state.js";
import { learningRateAt } from "../../../../worker/engine/train/schedule.js";
import {
  lossExploded,
  type StepMetrics,
  type TrainHyperparameters,
  TrainingDivergedError,
  type TrainOptions,
  train,
} from "../../../../worker/engine/train/train-loop.js";
import { FIXTURE, loraModel, packedRows, useBackend } from "./train-fixture.js";

const HP: TrainHyperparameters = {
  n_epochs: 2,
  batch_size: 4,
  learning_rate_multiplier: 20, // lr 4e-3: big enough that every step visibly moves the loss
  warmup_ratio: 0.2,
  lr_scheduler: "linear",
  full_finetune: false,
};

let ROWS: TokenBatch;
before(async () => {
  await useBackend();
  ROWS = packedRows(12, 24, 1); // 3 steps per epoch at batch 4
});

function weightsOf(model: CausalLM): Map<string, Float32Array> {
  return new Map([...model.trainableParams].map(([k, v]) => [k, v.dataSync() as Float32Array]));
}

async function run(model: CausalLM, extra: Partial<TrainOptions> = {}) {
  const steps: StepMetrics[] = [];
  const result = await train({
    model,
    train: ROWS,
    hyperparameters: HP,
    seed: 11,
    microBatchSize: 2,
    validEvery: 0,
    ...extra,
    onStep: async (m) => {
      steps.push(m);
      await extra.onStep?.(m);
    },
  });
  return { result, steps, losses: steps.map((s) => s.train_loss) };
}

test("same seed → the same losses step for step; another seed → different ones", async () => {
  const a = await run(await loraModel(3, 0.1));
  const b = await run(await loraModel(3, 0.1));
  const c = await run(await loraModel(3, 0.1), { seed: 12 });
  assert.equal(a.losses.length, 6);
  assert.deepEqual(b.losses, a.losses);
  assert.notDeepEqual(c.losses, a.losses);
  assert.ok(a.losses[5]! < a.losses[0]!, `the loss falls: ${a.losses}`);
  // the learning rate each step used is the schedule's
  a.steps.forEach((s, i) => {
    assert.equal(
      s.learning_rate,
      learningRateAt({ type: "linear", peakLr: 2e-4 * 20, totalSteps: 6, warmupRatio: 0.2 }, i),
    );
  });
  assert.equal(a.result.status, "completed");
  assert.equal(a.result.trainedTokens, 2 * (12 * 24 - 3));
});

test("stop + resume gives the same losses and weights as an uninterrupted run", async () => {
  const epochCheckpoints: Uint8Array[] = [];
  const fullModel = await loraModel(3, 0.1);
  const full = await run(fullModel, { onEpochEnd: (e) => void epochCheckpoints.push(e.checkpoint) });
  assert.equal(epochCheckpoints.length, 2);
  const expectedWeights = weightsOf(fullModel);

  // pause after step 4 (mid-epoch 2), then resume on a fresh model with a different LoRA init:
  // everything that matters must come from the checkpoint
  let seen = 0;
  const first = await run(await loraModel(3, 0.1), {
    shouldStop: () => seen >= 4,
    onStep: () => void seen++,
  });
  assert.ok(first.result.status === "stopped", "stopped");
  assert.equal(first.result.step, 4);
  const state = decodeCheckpoint(first.result.checkpoint).state;
  assert.deepEqual([state.step, state.epoch, state.stepInEpoch], [4, 1, 1]);
  const resumedModel = await loraModel(99, 0.1);
  const second = await run(resumedModel, { resumeFrom: first.result.checkpoint });
  assert.deepEqual([...first.losses, ...second.losses], full.losses);
  assert.deepEqual(
    second.steps.map((s) => s.step),
    [5, 6],
  );
  assert.deepEqual(weightsOf(resumedModel), expectedWeights);

  // resume from the end-of-epoch-1 checkpoint (the crash path)
  const crashModel = await loraModel(99, 0.1);
  const fromEpoch = await run(crashModel, { resumeFrom: epochCheckpoints[0] });
  assert.deepEqual(fromEpoch.losses, full.losses.slice(3));
  assert.deepEqual(weightsOf(crashModel), expectedWeights);
  assert.equal(fromEpoch.result.trainedTokens, full.result.trainedTokens);

  // a checkpoint from another run is refused
  await assert.rejects(
    run(await loraModel(3, 0.1), { seed: 5, resumeFrom: epochCheckpoints[0] }),
    /different run/,
  );
  for (const m of [fullModel, resumedModel, crashModel]) m.dispose();
});

test("a stop between micro-batches drops the half-done step; the resume redoes it identically", async () => {
  const full = await run(await loraModel(3, 0.1));
  // 2 micro-batches a step → shouldStop is asked before each step and once between its halves
  let calls = 0;
  const first = await run(await loraModel(3, 0.1), { shouldStop: () => ++calls === 6 });
  assert.ok(first.result.status === "stopped");
  assert.equal(first.result.step, 2, "stopped inside step 3");
  const second = await run(await loraModel(99, 0.1), { resumeFrom: first.result.checkpoint });
  assert.deepEqual([...first.losses, ...second.losses], full.losses);
});

test("the explosion rule: factor × the first loss, and at least 3 nats above it", () => {
  assert.equal(lossExploded(34, 6.7, 5), true);
  assert.equal(lossExploded(30, 6.7, 5), false);
  assert.equal(lossExploded(3, 0.2, 5), false, "noise on a near-zero first loss is not divergence");
  assert.equal(lossExploded(3.3, 0.2, 5), true);
});

test("memory does not grow: tensors and bytes after step 2 equal those after step 20", async () => {
  const model = await loraModel(3, 0.1);
  const seen = new Map<number, tf.MemoryInfo>();
  await run(model, {
    hyperparameters: { ...HP, n_epochs: 7 }, // 21 steps
    validation: packedRows(3, 24, 2),
    validEvery: 3,
    onStep: (m) => void seen.set(m.step, tf.memory()),
  });
  const [at2, at20] = [seen.get(2)!, seen.get(20)!];
  assert.equal(at20.numTensors, at2.numTensors, "tensor count");
  assert.equal(at20.numBytes, at2.numBytes, "bytes");
  const before = tf.memory().numTensors;
  model.dispose();
  assert.ok(tf.memory().numTensors < before);
});

test("gradient accumulation: 1×8 and 2×4 micro-batches give the same loss and the same update", async () => {
  // eps = 1 makes AdamW's first update smooth in the gradient (with the default eps it is
  // ≈ lr·sign(g), which would turn float noise on near-zero gradients into full-size steps)
  const hp = { ...HP, n_epochs: 1, batch_size: 8, warmup_ratio: 0 };
  const rows = packedRows(8, 24, 4); // row 0 has fewer label tokens than the others
  const outcomes = [];
  for (const microBatchSize of [8, 4]) {
    const model = await loraModel(3, 0);
    const { losses } = await run(model, {
      train: rows,
      hyperparameters: hp,
      microBatchSize,
      optimizer: new AdamW({ eps: 1 }),
    });
    outcomes.push({ loss: losses[0]!, weights: weightsOf(model) });
    model.dispose();
  }
  const [one, two] = outcomes;
  assert.ok(Math.abs(one!.loss - two!.loss) < 1e-5, `loss ${one!.loss} vs ${two!.loss}`);
  let maxDiff = 0;
  let maxMove = 0;
  const init = weightsOf(await loraModel(3, 0));
  for (const [name, w] of one!.weights) {
    const w2 = two!.weights.get(name)!;
    const w0 = init.get(name)!;
    for (let i = 0; i < w.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(w[i]! - w2[i]!));
      maxMove = Math.max(maxMove, Math.abs(w[i]! - w0[i]!));
    }
  }
  assert.ok(maxMove > 1e-4, `the step moved the weights (${maxMove})`);
  assert.ok(maxDiff < 1e-3 * maxMove, `updates differ by ${maxDiff} (move ${maxMove})`);

  // and the loss is the token-level mean over the whole batch, not a mean of the micro-batch means
  const model = await loraModel(3, 0);
  const terms = tf.tidy(() => {
    const t = model.lossTerms(rows, {});
    return tf.div(t.lossSum, t.tokenCount);
  });
  assert.ok(Math.abs(terms.dataSync()[0]! - one!.loss) < 1e-5);
  tf.dispose(terms);
  model.dispose();
});

test("divergence stops training with a message that says to lower the learning-rate multiplier", async () => {
  // Full fine-tuning at lr 2 blows the LM head up within two steps (LoRA on this tiny random
  // model only saturates towards the uniform loss, which is no explosion).
  const model = await loadModel(FIXTURE, { fullFinetune: true, seed: 1 });
  await assert.rejects(
    run(model, {
      hyperparameters: { ...HP, full_finetune: true, learning_rate_multiplier: 100_000, warmup_ratio: 0 },
      train: packedRows(8, 16, 1),
    }),
    (e: unknown) =>
      e instanceof TrainingDivergedError &&
      e.step <= 3 &&
      /Training diverged at step \d+: the training loss rose to .* Lower the learning_rate_multiplier \(it was 100000\)/.test(
        e.message,
      ),
  );
  model.dispose();
});

test("full fine-tuning: every weight trains, and stop + resume equals the uninterrupted run", async () => {
  const hp = { ...HP, full_finetune: true, learning_rate_multiplier: 50 };
  const rows = packedRows(8, 16, 3);
  const fullModel = await loadModel(FIXTURE, { fullFinetune: true, seed: 1 });
  const full = await run(fullModel, { hyperparameters: hp, train: rows });
  assert.equal(full.losses.length, 4);
  assert.equal(
    fullModel.trainableParams.size,
    3 + 2 * 9,
    "embeddings, final norm, head and 9 tensors a layer",
  );
  let seen = 0;
  const first = await run(await loadModel(FIXTURE, { fullFinetune: true, seed: 1 }), {
    hyperparameters: hp,
    train: rows,
    shouldStop: () => seen >= 3,
    onStep: () => void seen++,
  });
  assert.ok(first.result.status === "stopped");
  assert.equal(decodeCheckpoint(first.result.checkpoint).weights.size, fullModel.trainableParams.size);
  const resumedModel = await loadModel(FIXTURE, { fullFinetune: true, seed: 1 });
  const second = await run(resumedModel, {
    hyperparameters: hp,
    train: rows,
    resumeFrom: first.result.checkpoint,
  });
  assert.deepEqual([...first.losses, ...second.losses], full.losses);
  assert.deepEqual(weightsOf(resumedModel), weightsOf(fullModel));
  fullModel.dispose();
  resumedModel.dispose();
});

test("an aborted signal stops before the next step, with a checkpoint of the last finished one", async () => {
  const model = await loraModel(3, 0);
  const controller = new AbortController();
  const { result, steps } = await run(model, {
    signal: controller.signal,
    onStep: (m) => void (m.step === 2 && controller.abort()),
  });
  assert.equal(steps.length, 2);
  assert.ok(result.status === "stopped");
  assert.equal(decodeCheckpoint(result.checkpoint).state.step, 2);
  model.dispose();
});

test("a stop during the final validation returns the final state; resuming only validates", async () => {
  const model = await loraModel(3, 0);
  const validation = packedRows(6, 24, 9);
  let trainingDone = false;
  const first = await run(model, {
    validation,
    onStep: (m) => {
      trainingDone = m.step === 6;
    },
    shouldStop: () => trainingDone, // true from the first poll after the last step
  });
  assert.ok(first.result.status === "stopped");
  assert.equal(first.result.step, 6);
  const resumed = await run(model, { validation, resumeFrom: first.result.checkpoint });
  assert.equal(resumed.steps.length, 0);
  assert.ok(resumed.result.status === "completed" && Number.isFinite(resumed.result.metrics.full_valid_loss));
  model.dispose();
});

test("validation: a sample every N steps, the whole set at the end", async () => {
  const model = await loraModel(3, 0);
  const validation = packedRows(5, 24, 9);
  const { result, steps } = await run(model, { validation, validEvery: 2, validSampleRows: 2 });
  assert.deepEqual(
    steps.filter((s) => s.valid_loss !== undefined).map((s) => s.step),
    [2, 4, 6],
  );
  for (const s of steps) {
    assert.ok(s.train_mean_token_accuracy! >= 0 && s.train_mean_token_accuracy! <= 1);
    if (s.valid_loss !== undefined)
      assert.ok(Number.isFinite(s.valid_loss) && s.valid_mean_token_accuracy! >= 0);
  }
  assert.ok(result.status === "completed");
  assert.ok(Number.isFinite(result.metrics.full_valid_loss));
  // the full validation equals the model's own loss over all validation rows
  const t = model.lossTerms(validation, {});
  const expected = t.lossSum.dataSync()[0]! / t.tokenCount;
  tf.dispose([t.lossSum, t.correct]);
  assert.ok(
    Math.abs(result.metrics.full_valid_loss! - expected) < 1e-5,
    `${result.metrics.full_valid_loss} vs ${expected}`,
  );
  model.dispose();
});
