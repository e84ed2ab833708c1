// The model on the backend initBackend() picks (wasm + native matmul here) against tfjs's cpu
// backend in the same process: full fine-tuning touches kernels the golden LoRA checks do not
// (the trainable embedding's scatter gradient, gradients of every base weight).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { initGoldenBackend } from "../../../../scripts/golden/check-golden.js";
import type { TokenBatch } from "../../../../worker/engine/data/batch.js";
import type { CausalLM } from "../../../../worker/engine/model/causal-lm.js";
import { loadModel } from "../../../../worker/engine/model/load-model.js";
import { computeGradients } from "../../../../worker/engine/train/compute-gradients.js";
import { sftObjective } from "../../../../worker/engine/train/sft-objective.js";

const qwenDir = new URL("../../../fixtures/qwen2", import.meta.url).pathname;
const golden = JSON.parse(readFileSync(path.join(qwenDir, "golden.json"), "utf8"));
let active: string;

before(async () => {
  await initGoldenBackend();
  active = tf.getBackend();
});

const batch: TokenBatch = {
  batchSize: 2,
  seqLen: 16,
  inputIds: Int32Array.from(golden.batch.input_ids.flat()),
  labels: Int32Array.from(golden.batch.labels.flat()),
  positionIds: Int32Array.from({ length: 32 }, (_, i) => i % 16),
  segmentIds: Int32Array.from((golden.batch.attention_mask.flat() as number[]).map((m) => (m ? 0 : -1))),
};

/** The step's mean loss and gradients through the training path (computeGradients, SFT). */
async function lossAndGrads(model: CausalLM): Promise<{ loss: number; grads: Record<string, Float32Array> }> {
  const objective = sftObjective(model, batch);
  const r = await computeGradients(model, objective, [objective.select([0, 1])], { training: false });
  assert.ok(r?.grads);
  const grads: Record<string, Float32Array> = {};
  for (const [k, g] of Object.entries(r.grads)) grads[k] = (await g.data()) as Float32Array;
  const loss = (await r.loss.data())[0];
  tf.dispose([r.loss, r.stats ?? [], r.grads]);
  return { loss, grads };
}

describe(`backend parity (${process.env.TFJS_BACKEND ?? "auto"} vs cpu)`, () => {
  test("full fine-tuning: loss and every weight's gradient agree with the cpu backend", async () => {
    const model = await loadModel(qwenDir, { fullFinetune: true });
    try {
      const ours = await lossAndGrads(model);
      await tf.setBackend("cpu");
      const reference = await lossAndGrads(model);
      await tf.setBackend(active);
      assert.ok(
        Math.abs(ours.loss - golden.batch.loss) < 1e-5,
        `loss ${ours.loss} vs golden ${golden.batch.loss}`,
      );
      assert.ok(Math.abs(ours.loss - reference.loss) < 1e-5);
      assert.equal(Object.keys(ours.grads).length, model.trainableParams.size);
      for (const [name, ref] of Object.entries(reference.grads)) {
        const g = ours.grads[name];
        let maxRef = 0;
        let maxDiff = 0;
        for (let i = 0; i < ref.length; i++) {
          maxRef = Math.max(maxRef, Math.abs(ref[i]));
          maxDiff = Math.max(maxDiff, Math.abs(g[i] - ref[i]));
        }
        assert.ok(maxRef > 0, `${name} has a gradient`);
        assert.ok(maxDiff <= 1e-3 * maxRef, `${name}: ${maxDiff} vs max ${maxRef}`);
      }
    } finally {
      await tf.setBackend(active);
      model.dispose();
    }
  });
});
