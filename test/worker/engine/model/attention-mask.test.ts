import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  buildAllowedMask,
  buildAttentionBias,
  buildCachedAttentionBias,
  MASKED,
} from "../../../../worker/engine/model/attention-mask.js";

const rows = (mask: Uint8Array, T: number, b = 0) =>
  Array.from({ length: T }, (_, q) => Array.from(mask.slice((b * T + q) * T, (b * T + q + 1) * T)).join(""));

describe("attention mask from segment ids", () => {
  test("packed row: block-diagonal causal", () => {
    const mask = buildAllowedMask(
      { batchSize: 1, seqLen: 5, segmentIds: Int32Array.from([0, 0, 1, 1, 1]) },
      null,
    );
    assert.deepEqual(rows(mask, 5), ["10000", "11000", "00100", "00110", "00111"]);
  });

  test("padding: real queries never see pads; a pad query sees only itself", () => {
    const mask = buildAllowedMask(
      { batchSize: 2, seqLen: 4, segmentIds: Int32Array.from([0, 0, 0, 0, 0, 0, -1, -1]) },
      null,
    );
    assert.deepEqual(rows(mask, 4, 0), ["1000", "1100", "1110", "1111"]);
    assert.deepEqual(rows(mask, 4, 1), ["1000", "1100", "0010", "0001"]);
  });

  test("sliding window: query i sees keys j with i - w < j <= i", () => {
    const mask = buildAllowedMask({ batchSize: 1, seqLen: 5, segmentIds: new Int32Array(5) }, 2);
    assert.deepEqual(rows(mask, 5), ["10000", "11000", "01100", "00110", "00011"]);
  });

  test("bias is 0 where allowed and MASKED elsewhere", () => {
    const bias = buildAttentionBias({ batchSize: 1, seqLen: 2, segmentIds: Int32Array.from([0, 0]) }, null);
    assert.deepEqual([...bias], [0, MASKED, 0, 0]);
  });

  test("cached decoding: new queries see all past keys and themselves, within the window", () => {
    assert.deepEqual([...buildCachedAttentionBias(3, 1, null)], [0, 0, 0, 0]);
    assert.deepEqual(
      [...buildCachedAttentionBias(3, 2, 2)],
      [MASKED, MASKED, 0, 0, MASKED, MASKED, MASKED, MASKED, 0, 0],
    );
  });
});
