import assert from "node:assert/strict";
import { test } from "node:test";
import {
  broadcastSourceIndex,
  planBatchMatMul,
} from "../../../../worker/engine/backend/batch-matmul-plan.js";

test("2-D: one GEMM with M, N, K from the transposes", () => {
  assert.deepEqual(planBatchMatMul([7, 5], [3, 5], false, true), {
    outShape: [7, 3],
    m: 7,
    n: 3,
    k: 5,
    aIndex: [0],
    bIndex: [0],
    foldBatchIntoM: false,
  });
  const p = planBatchMatMul([5, 7], [5, 3], true, false);
  assert.deepEqual([p.m, p.n, p.k], [7, 3, 5]);
});

test("unbatched B with untransposed A folds the batch into M", () => {
  const p = planBatchMatMul([4, 7, 5], [5, 3], false, false);
  assert.equal(p.foldBatchIntoM, true);
  assert.deepEqual(p.outShape, [4, 7, 3]);
  assert.deepEqual(p.bIndex, [0, 0, 0, 0]);
  assert.equal(
    planBatchMatMul([4, 5, 7], [5, 3], true, false).foldBatchIntoM,
    false,
    "transposed A is not contiguous rows",
  );
  assert.equal(planBatchMatMul([4, 7, 5], [4, 5, 3], false, false).foldBatchIntoM, false, "batched B");
  assert.equal(
    planBatchMatMul([4, 7, 5], [1, 1, 5, 3], false, false).foldBatchIntoM,
    true,
    "B batch of size 1",
  );
});

test("batch dims broadcast numpy-style on both sides", () => {
  const p = planBatchMatMul([2, 1, 4, 5], [1, 3, 5, 6], false, false);
  assert.deepEqual(p.outShape, [2, 3, 4, 6]);
  assert.deepEqual(p.aIndex, [0, 0, 0, 1, 1, 1]);
  assert.deepEqual(p.bIndex, [0, 1, 2, 0, 1, 2]);
  assert.deepEqual(
    broadcastSourceIndex([3, 1], [2, 3, 4]),
    [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2],
  );
  assert.deepEqual(broadcastSourceIndex([], [3]), [0, 0, 0]);
});

test("mismatched inner or batch dimensions throw, naming the shapes", () => {
  assert.throws(
    () => planBatchMatMul([3, 4], [5, 6], false, false),
    /inner shapes \(4\) and \(5\).*3,4 and 5,6/,
  );
  assert.throws(() => planBatchMatMul([2, 3, 4], [3, 4, 5], false, false), /broadcast.*2,3,4 and 3,4,5/);
  assert.throws(() => planBatchMatMul([4], [4, 2], false, false), /rank ≥ 2/);
});
