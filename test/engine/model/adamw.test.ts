import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { AdamW } from "../../../worker/engine/train/adamw.js";

before(async () => {
  await tf.setBackend("cpu");
});

/** torch.optim.AdamW written out for one scalar parameter. */
function reference(
  p: number,
  grads: number[],
  lr: number,
  wd: number,
  b1 = 0.9,
  b2 = 0.999,
  eps = 1e-8,
): number {
  let m = 0;
  let v = 0;
  grads.forEach((g, i) => {
    const t = i + 1;
    p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    p -= (lr / (1 - b1 ** t)) * (m / (Math.sqrt(v) / Math.sqrt(1 - b2 ** t) + eps));
  });
  return p;
}

describe("AdamW", () => {
  test("matches torch's update, with decoupled weight decay on weights but not biases or norms", () => {
    const grads = [0.5, -0.2, 0.05, 1.5];
    const vars = new Map([
      ["layer.weight", tf.variable(tf.scalar(1.3))],
      ["layer.bias", tf.variable(tf.scalar(1.3))],
      ["model.norm.weight", tf.variable(tf.scalar(1.3))],
    ]);
    const opt = new AdamW({ weightDecay: 0.1 });
    for (const g of grads)
      opt.applyGradients(vars, Object.fromEntries([...vars.keys()].map((k) => [k, tf.scalar(g)])), 0.01);
    assert.ok(Math.abs(vars.get("layer.weight")!.dataSync()[0] - reference(1.3, grads, 0.01, 0.1)) < 1e-6);
    assert.ok(Math.abs(vars.get("layer.bias")!.dataSync()[0] - reference(1.3, grads, 0.01, 0)) < 1e-6);
    assert.ok(Math.abs(vars.get("model.norm.weight")!.dataSync()[0] - reference(1.3, grads, 0.01, 0)) < 1e-6);
    assert.notEqual(reference(1.3, grads, 0.01, 0.1), reference(1.3, grads, 0.01, 0));
  });

  test("variables without a gradient are left alone", () => {
    const vars = new Map([
      ["a", tf.variable(tf.scalar(1))],
      ["b", tf.variable(tf.scalar(2))],
    ]);
    new AdamW().applyGradients(vars, { a: tf.scalar(1) }, 0.1);
    assert.equal(vars.get("b")!.dataSync()[0], 2);
    assert.notEqual(vars.get("a")!.dataSync()[0], 1);
  });

  test("exported state resumes exactly where an uninterrupted run would be", () => {
    const grads = [
      [0.3, -1],
      [0.1, 0.4],
      [-0.7, 0.2],
      [0.05, 0.05],
    ];
    const run = (split: boolean) => {
      const vars = new Map([["w", tf.variable(tf.tensor1d([1, -1]))]]);
      let opt = new AdamW({ weightDecay: 0.01 });
      grads.forEach((g, i) => {
        if (split && i === 2) {
          const state = opt.exportState();
          opt.dispose();
          opt = new AdamW({ weightDecay: 0.01 });
          opt.importState(state);
        }
        opt.applyGradients(vars, { w: tf.tensor1d(g) }, 0.05);
      });
      return [...vars.get("w")!.dataSync()];
    };
    assert.deepEqual(run(true), run(false));
  });

  test("refuses bad hyperparameters", () => {
    assert.throws(() => new AdamW({ beta1: 1 }), /beta1/);
    assert.throws(() => new AdamW({ eps: 0 }), /eps/);
    assert.throws(() => new AdamW().applyGradients(new Map(), {}, Number.NaN), /learning rate/);
  });
});
