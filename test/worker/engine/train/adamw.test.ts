import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { installContiguousSliceKernel } from "../../../../worker/engine/backend/contiguous-slice-kernel.js";
import { AdamW } from "../../../../worker/engine/train/adamw.js";

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

  test("flat groups update every tensor to the same numbers as a per-tensor update", async () => {
    const shapes: Record<string, number[]> = {
      "l.q.lora_A": [4, 24],
      "l.q.lora_B": [24, 4],
      "l.bias": [24],
      "l.norm.weight": [24],
      "big.weight": [130, 130], // above the flat-group size: updated alone
      "big.bias": [20000],
    };
    const values = (name: string, seed: number) => {
      const size = shapes[name].reduce((a, b) => a * b, 1);
      return Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37 + seed + name.length));
    };
    /** The per-tensor update the flat groups must reproduce, in the same float32 ops. */
    const perTensor = (wd: number, lr: number, steps: number, skip: (name: string, t: number) => boolean) => {
      const out = new Map<string, Float32Array>();
      for (const name of Object.keys(shapes)) {
        let p = tf.tensor(values(name, 0), shapes[name]);
        let m = tf.zerosLike(p);
        let v = tf.zerosLike(p);
        for (let step = 1; step <= steps; step++) {
          if (skip(name, step)) continue;
          const g = tf.tensor(values(name, step), shapes[name]);
          const decay = wd > 0 && !name.endsWith(".bias") && !name.endsWith("norm.weight") ? 1 - lr * wd : 1;
          const c1 = 1 - 0.9 ** step;
          const c2 = 1 - 0.999 ** step;
          m = tf.add(tf.mul(m, 0.9), tf.mul(g, 1 - 0.9));
          v = tf.add(tf.mul(v, 0.999), tf.mul(tf.square(g), 1 - 0.999));
          const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(c2)), 1e-8);
          p = tf.sub(decay === 1 ? p : tf.mul(p, decay), tf.mul(tf.div(m, denom), lr / c1));
        }
        out.set(name, p.dataSync() as Float32Array);
      }
      return out;
    };
    // "l.bias" has no gradient at step 2 (the layout changes twice), and the state goes
    // through export/import after step 3.
    const skip = (name: string, step: number) => name === "l.bias" && step === 2;
    for (const backend of ["cpu", "wasm"]) {
      await tf.setBackend(backend);
      if (backend === "wasm") installContiguousSliceKernel();
      const vars = new Map(
        Object.keys(shapes).map((n) => [n, tf.variable(tf.tensor(values(n, 0), shapes[n]))]),
      );
      let opt = new AdamW({ weightDecay: 0.1 });
      for (let step = 1; step <= 4; step++) {
        const grads = Object.fromEntries(
          Object.keys(shapes)
            .filter((n) => !skip(n, step))
            .map((n) => [n, tf.tensor(values(n, step), shapes[n])]),
        );
        opt.applyGradients(vars, grads, 0.01);
        if (step === 3) {
          const state = opt.exportState();
          opt.dispose();
          opt = new AdamW({ weightDecay: 0.1 });
          opt.importState(state);
        }
      }
      let expected = new Map<string, Float32Array>();
      tf.tidy(() => {
        expected = perTensor(0.1, 0.01, 4, skip);
      });
      for (const [name, v] of vars) {
        assert.deepEqual(v.dataSync(), expected.get(name), `${backend}: ${name}`);
      }
      opt.dispose();
      tf.dispose([...vars.values()]);
    }
    await tf.setBackend("cpu");
  });
});
