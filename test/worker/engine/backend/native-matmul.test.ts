// The OpenBLAS override of tfjs-wasm's BatchMatMul/_FusedMatMul against tfjs's own cpu
// kernels. Skipped when the addon is not built (or TUNEHOUSE_NATIVE_MATMUL=0); with
// TUNEHOUSE_NATIVE_MATMUL=1 a missing addon fails instead, so CI proves the fast path.
import assert from "node:assert/strict";
import { after, beforeEach, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { nativeMatmulOptions } from "../../../../worker/engine/backend/backend.js";
import {
  installNativeMatmul,
  isNativeMatmulInstalled,
  loadBlasAddon,
  type NativeMatmulInfo,
  selfCheckBlas,
  uninstallNativeMatmul,
} from "../../../../worker/engine/backend/native-matmul.js";
import { ensureGradientsRegistered } from "../../../../worker/engine/backend/tfjs-gradients.js";
import { testBackendOptions } from "../../../support/engine-backend.js";

ensureGradientsRegistered();
const nativeOptions = nativeMatmulOptions(testBackendOptions());
const mode = nativeOptions.mode;
await tf.setBackend("wasm");
// Installed here, not in before(): the suite's skip decision needs the outcome.
const info: NativeMatmulInfo | undefined = mode === "off" ? undefined : installNativeMatmul(nativeOptions);
after(() => uninstallNativeMatmul());

function skipReason(): string | false {
  if (mode === "off") return "TUNEHOUSE_NATIVE_MATMUL=0";
  return info?.active ? false : `native matmul unavailable: ${info?.reason}`;
}

function seeded(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

interface Result {
  shape: number[];
  values: Float32Array;
}

/** Runs `f` on a backend with fresh tensors built from the same data; returns plain arrays. */
async function runOn(backend: "cpu" | "wasm", f: () => tf.Tensor | tf.Tensor[]): Promise<Result[]> {
  await tf.setBackend(backend);
  try {
    const out = tf.tidy(f);
    const list = Array.isArray(out) ? out : [out];
    const results = list.map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
    tf.dispose(list);
    return results;
  } finally {
    await tf.setBackend("wasm");
  }
}

function assertClose(actual: Result[], expected: Result[], tol: number, what: string): number {
  assert.equal(actual.length, expected.length, `${what}: output count`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    assert.deepEqual(actual[i].shape, expected[i].shape, `${what}: shape of output ${i}`);
    for (let j = 0; j < actual[i].values.length; j++) {
      const d = Math.abs(actual[i].values[j] - expected[i].values[j]);
      if (!(d <= tol))
        assert.fail(`${what}: output ${i} element ${j}: ${actual[i].values[j]} vs ${expected[i].values[j]}`);
      worst = Math.max(worst, d);
    }
  }
  return worst;
}

/** Same computation on wasm (native override) and cpu (tfjs reference kernel). */
async function compare(what: string, f: () => tf.Tensor | tf.Tensor[], tol = 1e-4): Promise<number> {
  const expected = await runOn("cpu", f);
  const actual = await runOn("wasm", f);
  return assertClose(actual, expected, tol, what);
}

function input(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(seeded(size(shape), seed), shape);
}

describe("native matmul (OpenBLAS on tfjs-wasm)", { skip: skipReason() }, () => {
  // Other test modules in the same process may have uninstalled it.
  beforeEach(() => {
    installNativeMatmul(nativeOptions);
  });

  test("reports OpenBLAS core, threads and a passing self-check", () => {
    assert.ok(info?.active);
    assert.ok(isNativeMatmulInstalled());
    assert.ok((info.threads ?? 0) >= 1);
    assert.ok(info.openblasCorename, "corename reported");
    assert.ok((info.selfCheckMaxError ?? 1) < 1e-3);
    assert.ok(selfCheckBlas(loadBlasAddon(nativeOptions.addonPath, nativeOptions.blas).addon) < 1e-3);
    if (process.env.OPENBLAS_CORETYPE) assert.equal(info.openblasCorename, process.env.OPENBLAS_CORETYPE);
  });

  for (const [tA, tB] of [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ] as const) {
    test(`2-D [300,257]·[257,129] transposeA=${tA} transposeB=${tB}`, async () => {
      const aShape = tA ? [257, 300] : [300, 257];
      const bShape = tB ? [129, 257] : [257, 129];
      await compare("2-D", () => tf.matMul(input(aShape, 1), input(bShape, 2), tA, tB));
    });
  }

  const batched: Array<[string, number[], number[], boolean, boolean]> = [
    ["rank 3, B broadcast (folded into M)", [4, 7, 5], [5, 3], false, false],
    ["rank 3, B broadcast, transposeA (not folded)", [4, 5, 7], [5, 3], true, false],
    ["rank 3, A broadcast", [1, 7, 5], [6, 5, 3], false, false],
    ["rank 3, A unbatched", [7, 5], [6, 5, 3], false, false],
    ["attention scores [32,128,64]·[32,128,64]ᵀ", [32, 128, 64], [32, 128, 64], false, true],
    ["attention values [32,128,128]·[32,128,64]", [32, 128, 128], [32, 128, 64], false, false],
    ["rank 4 broadcast, both transposed", [2, 3, 5, 7], [1, 1, 3, 5], true, true],
    ["rank 4 equal batches, transposeB", [2, 3, 4, 5], [2, 3, 6, 5], false, true],
  ];
  for (const [what, aShape, bShape, tA, tB] of batched) {
    test(what, async () => {
      await compare(what, () => tf.matMul(input(aShape, 3), input(bShape, 4), tA, tB));
    });
  }

  test("two-sided broadcast [2,1,4,5]·[1,3,5,6] equals the explicitly broadcast product", async () => {
    // tfjs's cpu kernel indexes batches as bi % batch, wrong for this case; broadcast
    // both operands first so its reference is exact.
    const expected = await runOn("cpu", () =>
      tf.matMul(
        tf.broadcastTo(input([2, 1, 4, 5], 5), [2, 3, 4, 5]),
        tf.broadcastTo(input([1, 3, 5, 6], 6), [2, 3, 5, 6]),
      ),
    );
    const actual = await runOn("wasm", () => tf.matMul(input([2, 1, 4, 5], 5), input([1, 3, 5, 6], 6)));
    assertClose(actual, expected, 1e-5, "two-sided broadcast");
  });

  test("fused bias + activations (relu, elu, relu6, sigmoid, leakyrelu, prelu, linear)", async () => {
    const cases: Array<{ activation: tf.fused.Activation; alpha?: boolean }> = [
      { activation: "relu" },
      { activation: "elu" },
      { activation: "relu6" },
      { activation: "sigmoid" },
      { activation: "leakyrelu" },
      { activation: "prelu", alpha: true },
      { activation: "linear" },
    ];
    for (const { activation, alpha } of cases) {
      await compare(`fused ${activation}`, () =>
        tf.fused.matMul({
          a: tf.mul(input([3, 9, 17], 7), 3),
          b: input([11, 17], 8),
          transposeB: true,
          bias: input([11], 9),
          activation,
          preluActivationWeights: alpha ? input([11], 10) : undefined,
          leakyreluAlpha: 0.1,
        }),
      );
    }
  });

  test("gradients through matMul(transposeB) and fused matMul(transposeA, relu, bias)", async () => {
    await compare("grads matMul tB", () => {
      const w = input([16, 12], 11);
      const g = tf.grads((a, b) => tf.sum(tf.mul(tf.matMul(a, b, false, true), w)));
      return g([input([16, 24], 12), input([12, 24], 13)]);
    });
    await compare("grads fused tA relu bias", () => {
      // 2-D: tfjs's BatchMatMul gradient does not reduce over a broadcast batch.
      const w = input([16, 12], 14);
      const g = tf.grads((a, b, bias) =>
        tf.sum(tf.mul(tf.fused.matMul({ a, b, transposeA: true, bias, activation: "relu" }), w)),
      );
      return g([input([24, 16], 15), input([24, 12], 16), input([12], 17)]);
    });
    await compare("grads batched attention", () => {
      const g = tf.grads((q, k) => tf.sum(tf.square(tf.matMul(q, k, false, true))));
      return g([input([4, 8, 6], 18), input([4, 8, 6], 19)]);
    });
  });

  test("int32 goes to tfjs-wasm's own kernel (which rejects it, as without the override)", () => {
    const original = (() => {
      uninstallNativeMatmul();
      try {
        tf.tidy(() =>
          tf.matMul(tf.tensor2d([[1, 2]], [1, 2], "int32"), tf.tensor2d([[3], [4]], [2, 1], "int32")),
        );
        return "ok";
      } catch (e) {
        return (e as Error).message;
      } finally {
        installNativeMatmul(nativeOptions);
      }
    })();
    assert.ok(isNativeMatmulInstalled());
    assert.throws(
      () =>
        tf.tidy(() =>
          tf.matMul(tf.tensor2d([[1, 2]], [1, 2], "int32"), tf.tensor2d([[3], [4]], [2, 1], "int32")),
        ),
      (e: Error) => e.message === original,
    );
  });

  test("shape errors still throw", () => {
    assert.throws(
      () => tf.tidy(() => tf.matMul(tf.ones([3, 4]), tf.ones([5, 6]))),
      /inner shapes \(4\) and \(5\)/,
    );
    assert.throws(() => tf.tidy(() => tf.matMul(tf.ones([2, 3, 4]), tf.ones([3, 4, 5]))), /broadcast/);
  });

  test("empty and K=0 products", () => {
    const empty = tf.tidy(() => tf.matMul(tf.ones([0, 4]), tf.ones([4, 3])));
    assert.deepEqual(empty.shape, [0, 3]);
    const zeroK = tf.tidy(() => tf.matMul(tf.ones([3, 0]), tf.ones([0, 4])));
    assert.deepEqual(zeroK.shape, [3, 4]);
    assert.deepEqual(Array.from(zeroK.dataSync()), new Array(12).fill(0));
    tf.dispose([empty, zeroK]);
  });

  test("an output that grows the wasm heap is still written in place", async () => {
    // 4096×4096 floats = 64 MiB: allocating the output grows the heap, detaching any
    // view taken earlier; a stale view would leave the result unwritten.
    await compare("heap growth", () => {
      const c = tf.matMul(input([4096, 8], 20), input([8, 4096], 21));
      return tf.slice(c, [4000, 4000], [96, 96]);
    });
  });

  test("no tensors or wasm buffers leak (fused path disposes its intermediates)", () => {
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const a = input([4, 6, 5], 22);
    const b = input([7, 5], 23);
    const bias = input([7], 24);
    const before = { tensors: tf.memory().numTensors, ids: backend.numDataIds() };
    for (let i = 0; i < 3; i++) {
      tf.dispose(tf.fused.matMul({ a, b, transposeB: true, bias, activation: "relu" }));
      tf.dispose(tf.matMul(a, b, false, true));
    }
    assert.deepEqual({ tensors: tf.memory().numTensors, ids: backend.numDataIds() }, before);
    tf.dispose([a, b, bias]);
  });

  test("uninstall restores the stock kernels", () => {
    uninstallNativeMatmul();
    assert.equal(isNativeMatmulInstalled(), false);
    const stock = tf.tidy(() => tf.matMul(input([5, 6], 25), input([7, 6], 26), false, true).dataSync());
    installNativeMatmul(nativeOptions);
    assert.ok(isNativeMatmulInstalled());
    const native = tf.tidy(() => tf.matMul(input([5, 6], 25), input([7, 6], 26), false, true).dataSync());
    for (let i = 0; i < stock.length; i++) assert.ok(Math.abs(stock[i] - native[i]) < 1e-5);
  });
});
