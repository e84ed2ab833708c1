// The DPO loss types against their formulas, and rpo_alpha's NLL term on the llama fixture.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { loadModel } from "../../../../worker/engine/model/load-model.js";
import { dpoPairTerms } from "../../../../worker/engine/train/dpo-loss.js";
import { dpoObjective, referenceLogprobs } from "../../../../worker/engine/train/dpo-objective.js";
import { FIXTURE, useBackend } from "./train-fixture.js";

before(async () => {
  await useBackend();
});

function close(a: number, b: number, tol = 1e-5): void {
  assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
}

test("sigmoid, hinge and ipo per-pair losses and rewards", async () => {
  // two pairs: policy and reference log-probs, chosen first
  const policy = tf.tensor1d([-3, -5, -6, -4]);
  const reference = tf.tensor1d([-4, -5, -5, -4]);
  const lengths = Float32Array.from([2, 4, 3, 1]);
  const beta = 0.5;
  const delta = [-3 + 4 - (-6 + 5), -5 + 5 - (-4 + 4)]; // [2, 0]
  const sig = dpoPairTerms(policy, reference, lengths, { beta, lossType: "sigmoid", rpoAlpha: null });
  const sigLoss = await sig.losses.data();
  for (const [i, d] of delta.entries()) close(sigLoss[i]!, Math.log1p(Math.exp(-beta * d)));
  assert.deepEqual(Array.from(await sig.chosenRewards.data()), [0.5, 0]);
  assert.deepEqual(Array.from(await sig.rejectedRewards.data()), [-0.5, 0]);
  const hinge = await dpoPairTerms(policy, reference, lengths, {
    beta,
    lossType: "hinge",
    rpoAlpha: null,
  }).losses.data();
  for (const [i, d] of delta.entries()) close(hinge[i]!, Math.max(0, 1 - beta * d));
  const ipo = await dpoPairTerms(policy, reference, lengths, {
    beta,
    lossType: "ipo",
    rpoAlpha: null,
  }).losses.data();
  const avgDelta = [1 / 2 - -1 / 3, 0];
  for (const [i, d] of avgDelta.entries()) close(ipo[i]!, (d - 1 / (2 * beta)) ** 2);
});

test("rpo_alpha adds alpha × the mean NLL of the chosen answers' tokens", async () => {
  const model = await loadModel(FIXTURE, { adapterDir: `${FIXTURE}/adapter` });
  try {
    const ids = (xs: number[]) => Int32Array.from(xs);
    const pairs = [
      {
        promptIds: ids([1, 5, 6]),
        chosenIds: ids([7, 8]),
        chosenLabels: ids([7, 8]),
        rejectedIds: ids([9]),
        rejectedLabels: ids([9]),
      },
      {
        promptIds: ids([1, 10]),
        chosenIds: ids([11, 12, 13]),
        chosenLabels: ids([11, 12, 13]),
        rejectedIds: ids([14, 15]),
        rejectedLabels: ids([14, 15]),
      },
    ];
    const reference = await referenceLogprobs(model, pairs, 0);
    const lossWith = async (rpoAlpha: number | null) => {
      const o = dpoObjective(model, pairs, reference, { beta: 0.1, lossType: "sigmoid", rpoAlpha }, 0);
      const b = o.select([0, 1]);
      const r = o.loss(b, b.counts, false);
      const v = (await r.loss.data())[0]!;
      tf.dispose([r.loss, r.stats]);
      return { v, batch: b };
    };
    const plain = await lossWith(null);
    const rpo = await lossWith(0.7);
    const logps = model.sequenceLogprobs(plain.batch.batch, {});
    const l = await logps.data();
    logps.dispose();
    close(rpo.v - plain.v, (0.7 * -(l[0]! + l[1]!)) / 5, 1e-4);
  } finally {
    model.dispose();
  }
});
