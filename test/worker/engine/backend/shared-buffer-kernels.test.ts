// The buffer-sharing Identity/Cast overrides on tfjs-wasm: same values as the stock
// (copying) kernels, and the shared heap buffer lives exactly as long as its last owner.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import {
  installSharedBufferKernels,
  isSharedBufferKernelsInstalled,
  uninstallSharedBufferKernels,
} from "../../../../worker/engine/backend/shared-buffer-kernels.js";

await tf.setBackend("wasm");
after(() => uninstallSharedBufferKernels());

interface WasmInternals {
  // get() of an unknown id asks the engine to move data from another backend: use has() first.
  dataIdMap: { get(id: object): { memoryOffset: number; refCount: number }; has(id: object): boolean };
}
const internals = () => tf.backend() as unknown as WasmInternals;

/** Identity (clone) and same-dtype Cast of float32, int32 and bool tensors, and a real cast. */
function ops(): { values: number[]; dtype: string; shape: number[] }[] {
  return tf.tidy(() => {
    const f = tf.tensor2d([1.5, -2.25, 3e-8, 4], [2, 2]);
    const i = tf.tensor1d([7, -3, 0], "int32");
    const b = tf.tensor1d([1, 0, 1], "bool");
    const outs = [
      tf.clone(f),
      tf.cast(f, "float32"),
      tf.clone(i),
      tf.cast(i, "int32"),
      tf.clone(b),
      tf.cast(i, "float32"),
      tf.cast(f, "int32"),
    ];
    return outs.map((t) => ({ values: Array.from(t.dataSync()), dtype: t.dtype, shape: t.shape }));
  });
}

test("values, dtypes and shapes equal the stock copying kernels", () => {
  uninstallSharedBufferKernels();
  const stock = ops();
  installSharedBufferKernels();
  assert.ok(isSharedBufferKernelsInstalled());
  assert.deepEqual(ops(), stock);
});

test("Identity and same-dtype Cast share the input's buffer; a real Cast does not", () => {
  installSharedBufferKernels();
  const x = tf.tensor1d([1, 2, 3]);
  const y = tf.clone(x);
  const z = tf.cast(x, "float32");
  const w = tf.cast(x, "int32");
  assert.equal(y.dataId, x.dataId);
  assert.equal(z.dataId, x.dataId);
  assert.notEqual(w.dataId, x.dataId);
  assert.equal(internals().dataIdMap.get(x.dataId).refCount, 3);
  tf.dispose([x, y, z, w]);
});

test("the shared buffer outlives the input and is freed with its last owner", () => {
  installSharedBufferKernels();
  const before = tf.memory().numDataBuffers;
  const x = tf.tensor1d([4, 5, 6]);
  const y = tf.clone(x);
  const id = x.dataId;
  x.dispose();
  // Still readable and unchanged after the original owner is gone …
  assert.deepEqual(Array.from(y.dataSync()), [4, 5, 6]);
  assert.equal(internals().dataIdMap.get(id).refCount, 1);
  // … and new tensors allocated meanwhile do not land on (and overwrite) its memory.
  const others = tf.tidy(() => [tf.fill([3], 9), tf.add(y, 1)]);
  assert.deepEqual(Array.from(y.dataSync()), [4, 5, 6]);
  tf.dispose(others);
  y.dispose();
  assert.ok(!internals().dataIdMap.has(id), "buffer freed with the last owner");
  assert.equal(tf.memory().numDataBuffers, before);
});

test("a variable assigned from a clone keeps its values when the source is disposed", () => {
  installSharedBufferKernels();
  const source = tf.tensor1d([0.5, 0.25]);
  const v = tf.variable(tf.zeros([2]));
  tf.tidy(() => v.assign(tf.clone(source)));
  source.dispose();
  const updated = tf.tidy(() => tf.add(v, 1));
  assert.deepEqual(Array.from(v.dataSync()), [0.5, 0.25]);
  assert.deepEqual(Array.from(updated.dataSync()), [1.5, 1.25]);
  tf.dispose([v, updated]);
});

test("the install is idempotent and uninstall restores copying", () => {
  installSharedBufferKernels();
  installSharedBufferKernels();
  uninstallSharedBufferKernels();
  assert.ok(!isSharedBufferKernelsInstalled());
  const x = tf.tensor1d([1]);
  const y = tf.clone(x);
  assert.notEqual(y.dataId, x.dataId);
  tf.dispose([x, y]);
});
