// The contiguous-copy Slice override on tfjs-wasm: the same values as the stock kernel for
// contiguous and strided slices of every dtype, and inputs left untouched.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import {
  installContiguousSliceKernel,
  isContiguousSliceKernelInstalled,
  uninstallContiguousSliceKernel,
} from "../../../../worker/engine/backend/contiguous-slice-kernel.js";
import { ensureGradientsRegistered } from "../../../../worker/engine/backend/tfjs-gradients.js";

ensureGradientsRegistered();

await tf.setBackend("wasm");
after(() => uninstallContiguousSliceKernel());

type Case = [string, () => tf.Tensor];

function cases(): Case[] {
  const flat = tf.tensor1d(Float32Array.from({ length: 50 }, (_, i) => i * 0.5 - 7));
  const grid = tf.tensor3d(
    Float32Array.from({ length: 60 }, (_, i) => Math.sin(i)),
    [3, 4, 5],
  );
  const ints = tf.tensor2d(
    Int32Array.from({ length: 12 }, (_, i) => i - 6),
    [3, 4],
    "int32",
  );
  const bools = tf.tensor1d([1, 0, 0, 1, 1], "bool");
  return [
    ["1-D middle", () => tf.slice(flat, 7, 20)],
    ["1-D to the end", () => tf.slice(flat, 30)],
    ["1-D everything", () => tf.slice(flat, 0, 50)],
    ["leading rows (contiguous)", () => tf.slice(grid, [1, 0, 0], [2, 4, 5])],
    ["one row, column range (contiguous)", () => tf.slice(grid, [2, 1, 0], [1, 2, 5])],
    ["strided columns (not contiguous)", () => tf.slice(grid, [0, 1, 2], [3, 2, 2])],
    ["int32 rows", () => tf.slice(ints, [1, 0], [2, 4])],
    ["int32 strided", () => tf.slice(ints, [0, 1], [3, 2])],
    ["bool", () => tf.slice(bools, 1, 3)],
    ["split of a flat vector", () => tf.stack(tf.split(flat, [10, 40]).map((t) => tf.sum(t)))],
  ];
}

function run(): { name: string; shape: number[]; dtype: string; values: number[] }[] {
  return tf.tidy(() =>
    cases().map(([name, f]) => {
      const t = f();
      return { name, shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync()) };
    }),
  );
}

test("values, shapes and dtypes equal the stock Slice kernel", () => {
  uninstallContiguousSliceKernel();
  const stock = run();
  installContiguousSliceKernel();
  assert.ok(isContiguousSliceKernelInstalled());
  assert.deepEqual(run(), stock);
});

test("the input is unchanged, the output is its own buffer, and nothing leaks", () => {
  installContiguousSliceKernel();
  const before = tf.memory().numTensors;
  const x = tf.tensor1d([1, 2, 3, 4, 5, 6]);
  const y = tf.slice(x, 2, 3);
  assert.notEqual(y.dataId, x.dataId);
  x.dispose();
  const filler = tf.fill([6], 42);
  assert.deepEqual(Array.from(y.dataSync()), [3, 4, 5]);
  tf.dispose([y, filler]);
  assert.equal(tf.memory().numTensors, before);
});

test("the gradient through a slice is unchanged", () => {
  installContiguousSliceKernel();
  const x = tf.tensor1d([1, 2, 3, 4]);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.slice(t, 1, 2), 3)))(x);
  assert.deepEqual(Array.from(g.dataSync()), [0, 3, 3, 0]);
  tf.dispose([x, g]);
});
