// DPO benchmark (not a test): `npm run bench:dpo -- [--pairs 64] [--epochs 2]`.
//
// The same preference data trained two ways on the tiny default model (LoRA r 8, batch 8,
// micro-batch 4, the real loop): supervised on each pair's prompt + preferred answer (unpacked,
// so the rows match), and DPO on the pairs. Prints tokens/s for both (real tokens through the
// trained forward/backward passes: DPO's count both answers, each with its prompt), the ratio,
// and the one-off cost of the cached reference log-probabilities against the training time
// (what computing the reference on the fly every epoch would add instead).

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadBackendOptions } from "../src/config.js";
import { initBackend } from "../worker/engine/backend/backend.js";
import { buildDataset, buildPreferenceDataset } from "../worker/engine/data/build-dataset.js";
import { resolveChatTemplate } from "../worker/engine/hf/chat-template.js";
import { ensureTinyModel } from "../worker/engine/hf/tiny-model.js";
import { loadTokenizer } from "../worker/engine/hf/tokenizer.js";
import { loadModel } from "../worker/engine/model/load-model.js";
import { dpoObjective, referenceLogprobs } from "../worker/engine/train/dpo-objective.js";
import { type TrainHyperparameters, train } from "../worker/engine/train/train-loop.js";

const { values } = parseArgs({
  options: { pairs: { type: "string", default: "64" }, epochs: { type: "string", default: "2" } },
});
const nPairs = Number(values.pairs);
const hp: TrainHyperparameters = {
  n_epochs: Number(values.epochs),
  batch_size: 8,
  learning_rate_multiplier: 1,
  warmup_ratio: 0,
  lr_scheduler: "constant",
  full_finetune: false,
};

function pairLines(n: number): string[] {
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      input: {
        messages: [{ role: "user", content: `Question ${i}: what is the capital of country ${i % 13}?` }],
      },
      preferred_output: [
        { role: "assistant", content: `The capital of country ${i % 13} is city ${i % 7}.` },
      ],
      non_preferred_output: [{ role: "assistant", content: `I do not know about ${i % 5}.` }],
    }),
  );
}

const backend = await initBackend(loadBackendOptions());
const dir = await mkdtemp(path.join(tmpdir(), "bench-dpo-"));
try {
  const folder = path.join(dir, await ensureTinyModel(dir));
  const tokenizer = await loadTokenizer(folder);
  const template = resolveChatTemplate(tokenizer.chatTemplate, { specialTokens: tokenizer.specialTokensMap });
  const lines = pairLines(nPairs);
  const chatLines = lines.map((l) => {
    const p = JSON.parse(l);
    return JSON.stringify({ messages: [...p.input.messages, ...p.preferred_output] });
  });
  const sft = buildDataset(chatLines, tokenizer, template, { maxSeqLength: 256, packing: false });
  const dpo = buildPreferenceDataset(lines, tokenizer, template, { maxSeqLength: 256 });
  const lora = { r: 8, alpha: 16, dropout: 0 };

  const sftModel = await loadModel(folder, { lora, seed: 1 });
  let t0 = performance.now();
  const s = await train({
    model: sftModel,
    train: sft.batch,
    hyperparameters: hp,
    seed: 1,
    microBatchSize: 4,
  });
  const sftMs = performance.now() - t0;
  sftModel.dispose();

  const dpoModel = await loadModel(folder, { lora, seed: 1 });
  t0 = performance.now();
  const reference = await referenceLogprobs(dpoModel, dpo.pairs, tokenizer.padId, 4);
  const refMs = performance.now() - t0;
  const objective = dpoObjective(
    dpoModel,
    dpo.pairs,
    reference,
    { beta: 0.1, lossType: "sigmoid", rpoAlpha: null },
    tokenizer.padId,
  );
  t0 = performance.now();
  const d = await train({
    model: dpoModel,
    train: objective,
    hyperparameters: hp,
    seed: 1,
    microBatchSize: 4,
  });
  const dpoMs = performance.now() - t0;
  dpoModel.dispose();

  const rate = (tokens: number, ms: number) => tokens / (ms / 1000);
  const sftRate = rate(s.trainedTokens, sftMs);
  const dpoRate = rate(d.trainedTokens, dpoMs);
  console.log(
    `backend ${backend.name}${backend.nativeMatmul ? " + native matmul" : ""}; ${nPairs} pairs, ${hp.n_epochs} epochs`,
  );
  console.log(
    `supervised (prompt + preferred): ${s.trainedTokens} tokens in ${sftMs.toFixed(0)} ms = ${sftRate.toFixed(0)} tokens/s`,
  );
  console.log(
    `DPO (prompt + both answers):     ${d.trainedTokens} tokens in ${dpoMs.toFixed(0)} ms = ${dpoRate.toFixed(0)} tokens/s`,
  );
  console.log(
    `DPO / supervised: ${(dpoRate / sftRate).toFixed(2)}× tokens/s, ${(dpoMs / sftMs).toFixed(2)}× time per epoch`,
  );
  console.log(
    `reference log-probs (cached, once): ${refMs.toFixed(0)} ms = ${((100 * refMs) / dpoMs).toFixed(1)}% of DPO training; ` +
      `on the fly it would cost that every epoch (${((100 * refMs * hp.n_epochs) / dpoMs).toFixed(1)}% over ${hp.n_epochs} epochs)`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
