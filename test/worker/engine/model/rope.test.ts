import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { ensureGradientsRegistered } from "../../../../worker/engine/backend/tfjs-gradients.js";
import {
  applyRope,
  ropeInverseFrequencies,
  ropeTables,
  rotateHalfByMatMul,
  rotateHalfBySplit,
} from "../../../../worker/engine/model/rope.js";

ensureGradientsRegistered();

const close = (a: number, b: number, tol = 1e-6) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

describe("rope", () => {
  test("default: inv_freq[i] = theta^(-2i/d)", () => {
    const inv = ropeInverseFrequencies({ type: "default", theta: 10000 }, 16, 10);
    assert.equal(inv.length, 8);
    for (let i = 0; i < 8; i++) assert.ok(close(inv[i], 10000 ** (-(2 * i) / 16)));
  });

  test("linear divides every frequency by the factor", () => {
    const d = ropeInverseFrequencies({ type: "default", theta: 10000 }, 16, 10);
    const l = ropeInverseFrequencies({ type: "linear", theta: 10000, factor: 4 }, 16, 10);
    for (let i = 0; i < 8; i++) assert.ok(close(l[i], d[i] / 4));
  });

  test("dynamic equals default within the original context and grows theta beyond it", () => {
    const rope = { type: "dynamic" as const, theta: 10000, factor: 2, originalMaxPositionEmbeddings: 32 };
    const d = ropeInverseFrequencies({ type: "default", theta: 10000 }, 16, 10);
    assert.deepEqual(ropeInverseFrequencies(rope, 16, 32), d);
    const longer = ropeInverseFrequencies(rope, 16, 64);
    const base = 10000 * ((2 * 64) / 32 - 1) ** (16 / 14);
    for (let i = 0; i < 8; i++) assert.ok(close(longer[i], base ** (-(2 * i) / 16), 1e-5));
  });

  test("llama3 keeps high frequencies, divides low ones, interpolates the middle", () => {
    const rope = {
      type: "llama3" as const,
      theta: 10000,
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 32,
    };
    const d = ropeInverseFrequencies({ type: "default", theta: 10000 }, 16, 10);
    const l = ropeInverseFrequencies(rope, 16, 10);
    const kinds = [...d].map((f, i) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < 32 / 4) return close(l[i], f) ? "kept" : "wrong";
      if (wavelen > 32 / 1) return close(l[i], f / 8) ? "divided" : "wrong";
      return l[i] < f && l[i] > f / 8 ? "smoothed" : "wrong";
    });
    assert.ok(!kinds.includes("wrong"), kinds.join(","));
    for (const k of ["kept", "divided", "smoothed"] as const)
      assert.ok(kinds.includes(k), `${k} branch used`);
  });

  test("applyRope rotates each (x_i, x_{i+d/2}) pair by pos·inv_freq[i]", async () => {
    await tf.setBackend("cpu");
    const dh = 4;
    const inv = Float32Array.from([1, 0.1]);
    const pos = Int32Array.from([0, 3]);
    const { cos, sin } = ropeTables(inv, pos);
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]); // [B=1, T=2, H=1, dh=4]
    const out = applyRope(
      tf.tensor4d(x, [1, 2, 1, dh]),
      tf.tensor4d(cos, [1, 2, 1, dh]),
      tf.tensor4d(sin, [1, 2, 1, dh]),
    ).dataSync();
    for (let t = 0; t < 2; t++) {
      for (let i = 0; i < 2; i++) {
        const a = pos[t] * inv[i];
        const [x1, x2] = [x[t * 4 + i], x[t * 4 + i + 2]];
        assert.ok(close(out[t * 4 + i], x1 * Math.cos(a) - x2 * Math.sin(a), 1e-5));
        assert.ok(close(out[t * 4 + i + 2], x2 * Math.cos(a) + x1 * Math.sin(a), 1e-5));
      }
    }
  });

  test("rotate-half by matmul equals the split/concat form bit for bit, values and gradients", async () => {
    for (const backend of ["cpu", "wasm"]) {
      await tf.setBackend(backend);
      const before = tf.memory().numTensors;
      const [B, T, H, dh] = [2, 3, 2, 8];
      const data = Float32Array.from({ length: B * T * H * dh }, (_, i) => Math.sin(i * 1.7) * (i % 5) - 0.3);
      const dyData = Float32Array.from(data, (v, i) => Math.cos(i) * 2 + v);
      const x = tf.tensor4d(data, [B, T, H, dh]);
      const dy = tf.tensor4d(dyData, [B, T, H, dh]);
      for (const [what, f] of [
        ["value", (r: (t: tf.Tensor4D) => tf.Tensor4D) => r(x)],
        [
          "gradient",
          (r: (t: tf.Tensor4D) => tf.Tensor4D) => tf.grad((t: tf.Tensor) => r(t as tf.Tensor4D))(x, dy),
        ],
      ] as const) {
        const bySplit = tf.tidy(() => f(rotateHalfBySplit));
        const byMatMul = tf.tidy(() => f(rotateHalfByMatMul));
        assert.deepEqual(byMatMul.shape, bySplit.shape, `${backend} ${what} shape`);
        const [a, b] = [byMatMul.dataSync(), bySplit.dataSync()];
        // + 0 folds -0 into 0: the sign of a zero is the one thing allowed to differ.
        for (let i = 0; i < a.length; i++)
          assert.equal(a[i] + 0, b[i] + 0, `${backend} ${what} element ${i}`);
        tf.dispose([bySplit, byMatMul]);
      }
      tf.dispose([x, dy]);
      assert.equal(tf.memory().numTensors, before, `${backend}: no tensor left behind`);
    }
    await tf.setBackend("cpu");
  });
});
