import assert from "node:assert/strict";
import { test } from "node:test";
import type { TokenBatch } from "../../../../worker/engine/data/batch.js";
import {
  countLabelTokens,
  countRealTokens,
  selectRows,
} from "../../../../worker/engine/train/select-rows.js";

// three padded rows of length 6: real lengths 6, 3, 4
const rows: TokenBatch = {
  batchSize: 3,
  seqLen: 6,
  inputIds: Int32Array.from([1, 5, 6, 7, 8, 2, 1, 9, 2, 0, 0, 0, 1, 4, 4, 2, 0, 0]),
  labels: Int32Array.from([
    -100, -100, 6, 7, 8, 2, -100, 9, 2, -100, -100, -100, -100, -100, 4, 2, -100, -100,
  ]),
  positionIds: Int32Array.from([0, 1, 2, 3, 4, 5, 0, 1, 2, 0, 0, 0, 0, 1, 2, 3, 0, 0]),
  segmentIds: Int32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, 0, 0, 0, 0, -1, -1]),
};

test("selected rows keep their order and are trimmed to the longest real row", () => {
  const b = selectRows(rows, [2, 1]);
  assert.equal(b.batchSize, 2);
  assert.equal(b.seqLen, 4);
  assert.deepEqual(Array.from(b.inputIds), [1, 4, 4, 2, 1, 9, 2, 0]);
  assert.deepEqual(Array.from(b.labels), [-100, -100, 4, 2, -100, 9, 2, -100]);
  assert.deepEqual(Array.from(b.segmentIds), [0, 0, 0, 0, 0, 0, 0, -1]);
  assert.equal(selectRows(rows, [0, 1]).seqLen, 6);
  assert.throws(() => selectRows(rows, [3]), /row 3/);
});

test("label and real-token counts", () => {
  assert.equal(countLabelTokens(rows), 4 + 2 + 2);
  assert.equal(countRealTokens(rows), 6 + 3 + 4);
  assert.equal(countLabelTokens(selectRows(rows, [1])), 2);
});
