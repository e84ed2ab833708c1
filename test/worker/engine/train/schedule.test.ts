import assert from "node:assert/strict";
import { test } from "node:test";
import { learningRateAt, lrMultiplier, warmupSteps } from "../../../../worker/engine/train/schedule.js";

// Reference values: transformers' get_linear_schedule_with_warmup / get_cosine_schedule_with_warmup
// lambdas (optimization.py), evaluated in Python for total 20 steps, warmup_ratio 0.1 (→ 2 steps).
const LINEAR_20_W2 = [
  0.0, 0.5, 1.0, 0.9444444444, 0.8888888889, 0.8333333333, 0.7777777778, 0.7222222222, 0.6666666667,
  0.6111111111, 0.5555555556, 0.5, 0.4444444444, 0.3888888889, 0.3333333333, 0.2777777778, 0.2222222222,
  0.1666666667, 0.1111111111, 0.0555555556, 0.0,
];
const COSINE_20_W2 = [
  0.0, 0.5, 1.0, 0.9924038765, 0.9698463104, 0.9330127019, 0.8830222216, 0.8213938048, 0.75, 0.6710100717,
  0.5868240888, 0.5, 0.4131759112, 0.3289899283, 0.25, 0.1786061952, 0.1169777784, 0.0669872981, 0.0301536896,
  0.0075961235, 0.0,
];

function assertClose(actual: number, expected: number, what: string) {
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} vs ${expected}`);
}

test("warm-up steps round up as transformers does", () => {
  assert.equal(warmupSteps(20, 0.1), 2);
  assert.equal(warmupSteps(10, 0.03), 1);
  assert.equal(warmupSteps(100, 0), 0);
  assert.throws(() => warmupSteps(10, 1.5), /warmup_ratio/);
});

test("linear schedule matches transformers step for step", () => {
  LINEAR_20_W2.forEach((expected, step) => {
    assertClose(lrMultiplier("linear", step, 20, 2), expected, `linear step ${step}`);
  });
});

test("cosine schedule matches transformers step for step", () => {
  COSINE_20_W2.forEach((expected, step) => {
    assertClose(lrMultiplier("cosine", step, 20, 2), expected, `cosine step ${step}`);
  });
});

test("learningRateAt scales the multiplier by the peak rate; no warm-up starts at the peak", () => {
  const config = { type: "linear" as const, peakLr: 2e-4, totalSteps: 20, warmupRatio: 0.1 };
  assertClose(learningRateAt(config, 3), 2e-4 * 0.9444444444, "step 3");
  assertClose(learningRateAt({ ...config, warmupRatio: 0 }, 0), 2e-4, "no warm-up");
  assertClose(learningRateAt({ ...config, type: "constant" }, 15), 2e-4, "constant");
});
