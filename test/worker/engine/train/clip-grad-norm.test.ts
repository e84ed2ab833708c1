import assert from "node:assert/strict";
import { test } from "node:test";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { clipGradNorm, globalNorm } from "../../../../worker/engine/train/clip-grad-norm.js";

test("global norm is over all tensors together; large gradients are scaled to max norm", async () => {
  await tf.setBackend("cpu");
  const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor2d([[0, 4]]) }; // global norm 5
  const before = tf.memory().numTensors;
  const { grads: clipped, norm } = clipGradNorm(grads, 1.0);
  assert.equal(tf.memory().numTensors, before + 3, "only the two clipped grads and the norm survive");
  assert.ok(Math.abs(norm.dataSync()[0]! - 5) < 1e-6);
  const scale = 1 / (5 + 1e-6);
  assert.ok(Math.abs(clipped.a!.dataSync()[0]! - 3 * scale) < 1e-6);
  assert.ok(Math.abs(clipped.b!.dataSync()[1]! - 4 * scale) < 1e-6);
  assert.ok(Math.abs(globalNorm(clipped).dataSync()[0]! - 1) < 1e-5);
  tf.dispose([clipped, norm]);
});

test("gradients under the max norm are left unchanged", async () => {
  await tf.setBackend("cpu");
  const grads = { a: tf.tensor1d([0.3, 0.4]) };
  const { grads: clipped, norm } = clipGradNorm(grads, 1.0);
  assert.deepEqual(Array.from(clipped.a!.dataSync()), Array.from(grads.a.dataSync()));
  assert.ok(Math.abs(norm.dataSync()[0]! - 0.5) < 1e-6);
  assert.throws(() => clipGradNorm(grads, 0), /max grad norm/);
});
