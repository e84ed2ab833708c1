// The engine path the jobs worker runs, end to end on the tiny default model: JSONL lines →
// dataset → resolved hyperparameters → LoRA training with per-epoch checkpoints → PEFT adapter
// on disk → the adapter loaded back gives the trained model's loss.
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { buildDataset } from "../../../../worker/engine/data/build-dataset.js";
import { resolveChatTemplate } from "../../../../worker/engine/hf/chat-template.js";
import { ensureTinyModel } from "../../../../worker/engine/hf/tiny-model.js";
import { loadTokenizer } from "../../../../worker/engine/hf/tokenizer.js";
import { loadModel } from "../../../../worker/engine/model/load-model.js";
import { decodeCheckpoint } from "../../../../worker/engine/train/checkpoint-state.js";
import { resolveHyperparameters } from "../../../../worker/engine/train/hyperparameters.js";
import { type EpochEnd, type StepMetrics, train } from "../../../../worker/engine/train/train-loop.js";
import { useBackend } from "./train-fixture.js";

let dir: string;
before(async () => {
  await useBackend();
  dir = await mkdtemp(path.join(tmpdir(), "train-e2e-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function chatLines(n: number, offset: number): string[] {
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      messages: [
        { role: "system", content: "You answer with the capital." },
        { role: "user", content: `Capital number ${i + offset}?` },
        { role: "assistant", content: `The capital is city ${(i + offset) % 5}.` },
      ],
    }),
  );
}

test("lines → dataset → train → PEFT adapter → reload gives the same loss", async () => {
  const folder = path.join(dir, await ensureTinyModel(dir));
  const tokenizer = await loadTokenizer(folder);
  const template = resolveChatTemplate(tokenizer.chatTemplate, { specialTokens: tokenizer.specialTokensMap });
  const hp = resolveHyperparameters(
    {
      n_epochs: 2,
      batch_size: 4,
      learning_rate_multiplier: 10,
      lora_dropout: 0.1,
      max_seq_length: 64,
      warmup_ratio: 0,
    },
    16,
  );
  const data = buildDataset(chatLines(16, 0), tokenizer, template, {
    maxSeqLength: hp.max_seq_length,
    packing: hp.packing,
  });
  const valid = buildDataset(chatLines(4, 100), tokenizer, template, {
    maxSeqLength: hp.max_seq_length,
    packing: hp.packing,
  });
  assert.equal(data.stats.examples, 16);
  assert.ok(data.batch.batchSize > 4, `${data.batch.batchSize} rows: at least two steps an epoch`);

  const seed = 42;
  const model = await loadModel(folder, {
    lora: {
      r: hp.lora_rank,
      alpha: hp.lora_alpha,
      dropout: hp.lora_dropout,
      targetModules: hp.target_modules as never,
    },
    seed,
  });
  const steps: StepMetrics[] = [];
  const epochs: EpochEnd[] = [];
  const result = await train({
    model,
    train: data.batch,
    validation: valid.batch,
    hyperparameters: hp,
    seed,
    onStep: (m) => void steps.push(m),
    onEpochEnd: (e) => void epochs.push(e),
    checkpointMeta: { job: "ftjob-test", hyperparameters: hp },
  });
  assert.ok(result.status === "completed");
  const stepsPerEpoch = Math.ceil(data.batch.batchSize / 4);
  assert.equal(result.totalSteps, 2 * stepsPerEpoch);
  assert.deepEqual(
    epochs.map((e) => [e.epoch, e.step]),
    [
      [0, stepsPerEpoch],
      [1, 2 * stepsPerEpoch],
    ],
  );
  assert.deepEqual(decodeCheckpoint(epochs[0]!.checkpoint).state.meta, {
    job: "ftjob-test",
    hyperparameters: hp,
  });
  assert.equal(result.trainedTokens, 2 * data.stats.totalTokens);
  assert.ok(
    steps.at(-1)!.train_loss < steps[0]!.train_loss,
    `loss falls: ${steps.map((s) => s.train_loss.toFixed(3))}`,
  );

  const adapterDir = path.join(dir, "adapter");
  await model.saveAdapter(adapterDir);
  assert.deepEqual((await readdir(adapterDir)).sort(), ["adapter_config.json", "adapter_model.safetensors"]);
  const reloaded = await loadModel(folder, { adapterDir });
  const lossOf = async (m: typeof model) => {
    const r = await m.evaluate(valid.batch);
    return r.lossSum / r.tokenCount;
  };
  const [a, b] = [await lossOf(model), await lossOf(reloaded)];
  assert.ok(Math.abs(a - b) < 1e-5, `${a} vs ${b}`);
  assert.ok(Math.abs(result.metrics.full_valid_loss! - a) < 1e-5);
  model.dispose();
  reloaded.dispose();
  assert.ok(tf.memory().numTensors >= 0);
});
