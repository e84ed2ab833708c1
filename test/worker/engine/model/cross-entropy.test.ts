import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { ensureGradientsRegistered } from "../../../../worker/engine/backend/tfjs-gradients.js";
import { correctCount, crossEntropySum, shiftLabels } from "../../../../worker/engine/model/cross-entropy.js";

before(async () => {
  await tf.setBackend("cpu");
  ensureGradientsRegistered();
});

describe("cross-entropy over label tokens", () => {
  test("shiftLabels: logits at t score labels[t + 1] within the row; -100 ignored", () => {
    const labels = Int32Array.from([-100, 5, 6, -100, /* row 2 */ 7, -100, 8, 9]);
    const s = shiftLabels(labels, 2, 4, 10);
    assert.deepEqual([...s.weights], [1, 1, 0, 0, 0, 1, 1, 0]);
    assert.deepEqual([...s.targets], [5, 6, 0, 0, 0, 8, 9, 0]);
    assert.equal(s.count, 4);
  });

  test("a label outside the vocabulary names its row and position", () => {
    assert.throws(() => shiftLabels(Int32Array.from([0, 12]), 1, 2, 10), /label 12 at row 0, position 1/);
  });

  test("sum, gradient and accuracy equal the log-softmax reference", () => {
    const logitsData = Float32Array.from({ length: 4 * 6 }, (_, i) => Math.sin(i * 1.7) * 3);
    const targets = Int32Array.from([2, 0, 5, 1]);
    const weights = Float32Array.from([1, 0, 1, 1]);
    const logits = tf.tensor2d(logitsData, [4, 6]);
    const ours = tf.grad((z: tf.Tensor) => crossEntropySum(z as tf.Tensor2D, targets, weights));
    const reference = tf.grad((z: tf.Tensor) =>
      tf.neg(
        tf.sum(
          tf.mul(
            tf.mul(tf.logSoftmax(z), tf.oneHot(tf.tensor1d(targets, "int32"), 6)),
            tf.reshape(tf.tensor1d(weights), [-1, 1]),
          ),
        ),
      ),
    );
    const value = crossEntropySum(logits, targets, weights).dataSync()[0];
    const refValue = tf
      .neg(
        tf.sum(
          tf.mul(
            tf.mul(tf.logSoftmax(logits), tf.oneHot(tf.tensor1d(targets, "int32"), 6)),
            tf.reshape(tf.tensor1d(weights), [-1, 1]),
          ),
        ),
      )
      .dataSync()[0];
    assert.ok(Math.abs(value - refValue) < 1e-5, `${value} vs ${refValue}`);
    const g = ours(logits).dataSync();
    const r = reference(logits).dataSync();
    for (let i = 0; i < g.length; i++) assert.ok(Math.abs(g[i] - r[i]) < 1e-5, `grad ${i}`);
    const argmax = tf.argMax(logits, 1).dataSync();
    const expectedCorrect = [0, 2, 3].filter((i) => argmax[i] === targets[i]).length;
    assert.equal(correctCount(logits, targets, weights).dataSync()[0], expectedCorrect);
  });
});
