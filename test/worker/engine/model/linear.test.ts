// linear(): the explicit-transpose path (the no-native fallback on stock tfjs-wasm)
// must equal the plain matMul path in value and gradients, on every backend we use.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { nativeMatmulOptions } from "../../../../worker/engine/backend/backend.js";
import {
  installNativeMatmul,
  isNativeMatmulInstalled,
  uninstallNativeMatmul,
} from "../../../../worker/engine/backend/native-matmul.js";
import { ensureGradientsRegistered } from "../../../../worker/engine/backend/tfjs-gradients.js";
import { linear, linearExplicitTranspose, linearMatMul } from "../../../../worker/engine/model/linear.js";
import { testBackendOptions } from "../../../support/engine-backend.js";

ensureGradientsRegistered();
const native = nativeMatmulOptions(testBackendOptions());
const nativeAvailable = native.mode !== "off" && installNativeMatmul(native).active;
uninstallNativeMatmul();

function seeded(shape: number[], seed: number): tf.Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const v = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    v[i] = (s / 2 ** 32) * 2 - 1;
  }
  return tf.tensor(v, shape);
}

type LinearFn = typeof linear;

/** value and gradients of sum(linear(x, W, b) ⊙ R) w.r.t. x, W, b. */
function valueAndGrads(f: LinearFn, withBias: boolean): Float32Array[] {
  return tf.tidy(() => {
    const x = seeded([37, 24], 1) as tf.Tensor2D;
    const w = seeded([19, 24], 2) as tf.Tensor2D;
    const b = seeded([19], 3) as tf.Tensor1D;
    const r = seeded([37, 19], 4);
    const loss = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(tf.mul(f(xx as tf.Tensor2D, ww as tf.Tensor2D, withBias ? (bb as tf.Tensor1D) : undefined), r));
    const y = f(x, w, withBias ? b : undefined);
    const grads = withBias
      ? tf.grads(loss)([x, w, b])
      : tf.grads((xx: tf.Tensor, ww: tf.Tensor) => loss(xx, ww, b))([x, w]);
    const out = [y, ...grads];
    return out.map((t) => t.dataSync() as Float32Array);
  });
}

function assertAllClose(a: Float32Array[], b: Float32Array[], tol: number, what: string) {
  assert.equal(a.length, b.length);
  a.forEach((arr, i) => {
    assert.equal(arr.length, b[i].length, `${what}: length of output ${i}`);
    for (let j = 0; j < arr.length; j++) {
      if (!(Math.abs(arr[j] - b[i][j]) <= tol))
        assert.fail(`${what}: output ${i} [${j}] ${arr[j]} vs ${b[i][j]}`);
    }
  });
}

const setups: Array<{ name: string; skip?: string; setup: () => Promise<void> }> = [
  { name: "cpu", setup: async () => void (await tf.setBackend("cpu")) },
  {
    name: "wasm (stock kernels)",
    setup: async () => {
      await tf.setBackend("wasm");
      uninstallNativeMatmul();
    },
  },
  {
    name: "wasm + native matmul",
    skip: nativeAvailable ? undefined : "native matmul unavailable",
    setup: async () => {
      await tf.setBackend("wasm");
      installNativeMatmul(native);
    },
  },
];

for (const { name, skip, setup } of setups) {
  describe(`linear on ${name}`, { skip }, () => {
    for (const withBias of [false, true]) {
      test(`explicit-transpose path equals matMul path (bias: ${withBias})`, async () => {
        await setup();
        const reference = valueAndGrads(linearMatMul, withBias);
        const explicit = valueAndGrads(linearExplicitTranspose, withBias);
        assertAllClose(explicit, reference, 1e-5, name);
        // and against a hand-computed dW for one element: Σ_n R[n,o]·x[n,i]
        const [x, r] = [
          seeded([37, 24], 1).arraySync() as number[][],
          seeded([37, 19], 4).arraySync() as number[][],
        ];
        let dw = 0;
        for (let n = 0; n < 37; n++) dw += r[n][5] * x[n][7];
        assert.ok(
          Math.abs(explicit[2][5 * 24 + 7] - dw) < 1e-4,
          `dW[5,7] ${explicit[2][5 * 24 + 7]} vs ${dw}`,
        );
      });
    }

    test("no tensors leak through forward and backward", async () => {
      await setup();
      for (const f of [linearExplicitTranspose, linearMatMul]) {
        valueAndGrads(f, true);
        const before = tf.memory().numTensors;
        valueAndGrads(f, true);
        assert.equal(tf.memory().numTensors, before);
      }
    });
  });
}

test("linear() picks the explicit-transpose path only on wasm without the native matmul", async () => {
  const kernelsOf = async () => {
    const x = seeded([8, 6], 5) as tf.Tensor2D;
    const w = seeded([4, 6], 6) as tf.Tensor2D;
    const profile = await tf.profile(() => linear(x, w));
    tf.dispose([x, w]);
    tf.dispose(profile.result as tf.Tensor);
    return profile.kernelNames;
  };
  await tf.setBackend("wasm");
  uninstallNativeMatmul();
  assert.ok((await kernelsOf()).includes("Transpose"), "stock wasm: explicit transposes");
  await tf.setBackend("cpu");
  assert.ok(!(await kernelsOf()).includes("Transpose"), "cpu: one matMul");
  if (nativeAvailable) {
    await tf.setBackend("wasm");
    installNativeMatmul(native);
    assert.ok(isNativeMatmulInstalled());
    assert.ok(!(await kernelsOf()).includes("Transpose"), "wasm + native: one matMul");
    uninstallNativeMatmul();
  }
});

test("stock tfjs-wasm's fused matMul (transposeB + bias) is wrong, which is why linear avoids it", async () => {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    return tf.tidy(() =>
      Array.from(
        tf.fused
          .matMul({
            a: tf.tensor2d([
              [1, 2],
              [3, 4],
            ]),
            b: tf.tensor2d([
              [1, 0],
              [0, 1],
              [1, 1],
            ]),
            transposeB: true,
            bias: tf.tensor1d([10, 20, 30]),
          })
          .dataSync(),
      ),
    );
  };
  uninstallNativeMatmul();
  assert.deepEqual(await run("cpu"), [11, 22, 33, 13, 24, 37]);
  // If this starts to pass after a tfjs upgrade, linearMatMul may go back to tf.fused.matMul.
  assert.notDeepEqual(await run("wasm"), [11, 22, 33, 13, 24, 37]);
  if (nativeAvailable) {
    installNativeMatmul(native);
    assert.deepEqual(await run("wasm"), [11, 22, 33, 13, 24, 37], "the native override computes it right");
    uninstallNativeMatmul();
  }
});

test("shape errors name the shapes", () => {
  assert.throws(
    () => linear(tf.zeros([3, 5]) as tf.Tensor2D, tf.zeros([4, 6]) as tf.Tensor2D),
    /x \[3,5\].*weight \[4,6\]/,
  );
  assert.throws(
    () =>
      linear(tf.zeros([3, 5]) as tf.Tensor2D, tf.zeros([4, 5]) as tf.Tensor2D, tf.zeros([5]) as tf.Tensor1D),
    /bias must be \[4\]/,
  );
});
