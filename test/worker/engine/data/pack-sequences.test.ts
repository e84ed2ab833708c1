import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IGNORE_INDEX } from "../../../../worker/engine/data/batch.js";
import { batchOrder, epochBatches } from "../../../../worker/engine/data/batch-order.js";
import type { EncodedSequence } from "../../../../worker/engine/data/encode-chat.js";
import { firstFitDecreasing, packSequences } from "../../../../worker/engine/data/pack-sequences.js";
import {
  collateRows,
  realTokenShare,
  rowFromSequences,
} from "../../../../worker/engine/data/sequence-row.js";
import { truncateSequence } from "../../../../worker/engine/data/truncate-sequence.js";

/** A sequence of `n` tokens whose ids encode (example, position) and whose labels are all trained. */
function seq(example: number, n: number): EncodedSequence {
  const ids = Int32Array.from({ length: n }, (_, k) => example * 1000 + k);
  return { inputIds: ids, labels: ids.slice() };
}

describe("firstFitDecreasing", () => {
  it("places longest first, each into the first row with room", () => {
    // sorted: 7(i1) 5(i0) 4(i3) 3(i2) 2(i4) 1(i5), capacity 10
    // 7 → r0 (3 left); 5 → r1 (5 left); 4 → r1 (1 left); 3 → r0 (0 left); 2 → r2; 1 → r1 (0 left)
    assert.deepEqual(firstFitDecreasing([5, 7, 3, 4, 2, 1], 10), [[1, 2], [0, 3, 5], [4]]);
  });

  it("never overfills a row and places every item once (randomised)", () => {
    let s = 12345;
    const rand = () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s / 2147483648;
    };
    for (let trial = 0; trial < 20; trial++) {
      const cap = 16 + Math.floor(rand() * 100);
      const lengths = Array.from(
        { length: 1 + Math.floor(rand() * 200) },
        () => 1 + Math.floor(rand() * cap),
      );
      const bins = firstFitDecreasing(lengths, cap);
      const seen = bins.flat().sort((a, b) => a - b);
      assert.deepEqual(
        seen,
        lengths.map((_, i) => i),
      );
      for (const bin of bins) assert.ok(bin.reduce((n, i) => n + lengths[i], 0) <= cap);
      // First fit: no item could have gone into an earlier row at the moment it was placed.
      const fill = new Array(bins.length).fill(0);
      const rowOf = new Map<number, number>();
      bins.forEach((b, r) => {
        for (const i of b) rowOf.set(i, r);
      });
      const order = lengths.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
      for (const i of order) {
        const r = rowOf.get(i)!;
        for (let e = 0; e < r; e++) assert.ok(fill[e] + lengths[i] > cap, `item ${i} fitted in row ${e}`);
        fill[r] += lengths[i];
      }
    }
  });

  it("refuses an item longer than a row", () => {
    assert.throws(() => firstFitDecreasing([3, 11], 10), /sequence 1 has 11 tokens/);
  });
});

describe("packed rows", () => {
  it("segment ids, positions restarting, no label at a segment's first token, ids in place", () => {
    const rows = packSequences([seq(1, 4), seq(2, 6), seq(3, 3)], 10);
    // FFD: 6(ex2) → r0, 4(ex1) → r0, 3(ex3) → r1
    assert.equal(rows.length, 2);
    const r0 = rows[0];
    assert.deepEqual([...r0.segmentIds], [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
    assert.deepEqual([...r0.positionIds], [0, 1, 2, 3, 4, 5, 0, 1, 2, 3]);
    assert.deepEqual([...r0.inputIds], [2000, 2001, 2002, 2003, 2004, 2005, 1000, 1001, 1002, 1003]);
    assert.deepEqual([...r0.labels], [-100, 2001, 2002, 2003, 2004, 2005, -100, 1001, 1002, 1003]);
    for (const row of rows) {
      for (let t = 0; t < row.inputIds.length; t++) {
        const starts = t === 0 || row.segmentIds[t] !== row.segmentIds[t - 1];
        if (starts) {
          assert.equal(row.positionIds[t], 0);
          assert.equal(row.labels[t], IGNORE_INDEX);
        } else assert.equal(row.positionIds[t], row.positionIds[t - 1] + 1);
      }
    }
  });

  it("collated: right-padded with pad id, label -100, segment -1; real-token share = efficiency", () => {
    const rows = packSequences([seq(1, 4), seq(2, 6), seq(3, 3)], 10);
    const batch = collateRows(rows, 7, 10);
    assert.equal(batch.batchSize, 2);
    assert.equal(batch.seqLen, 10);
    assert.deepEqual([...batch.segmentIds.slice(10)], [0, 0, 0, -1, -1, -1, -1, -1, -1, -1]);
    assert.deepEqual([...batch.inputIds.slice(13)], [7, 7, 7, 7, 7, 7, 7]);
    assert.deepEqual([...batch.labels.slice(13)], new Array(7).fill(IGNORE_INDEX));
    assert.equal(realTokenShare(batch), 13 / 20);
  });

  it("padding path: one example per row, padded to the longest", () => {
    const batch = collateRows([rowFromSequences([seq(1, 2)]), rowFromSequences([seq(2, 4)])], 0);
    assert.equal(batch.seqLen, 4);
    assert.deepEqual([...batch.segmentIds], [0, 0, -1, -1, 0, 0, 0, 0]);
    assert.deepEqual([...batch.labels], [-100, 1001, -100, -100, -100, 2001, 2002, 2003]);
  });
});

describe("truncateSequence", () => {
  it("cuts to max length and keeps the example only if a scored label survives", () => {
    const s: EncodedSequence = {
      inputIds: Int32Array.from([1, 2, 3, 4, 5, 6]),
      labels: Int32Array.from([-100, -100, -100, -100, 5, 6]),
    };
    assert.equal(truncateSequence(s, 4), null);
    const kept = truncateSequence(s, 5)!;
    assert.equal(kept.truncated, true);
    assert.equal(kept.trainedTokens, 1);
    assert.deepEqual([...kept.sequence.inputIds], [1, 2, 3, 4, 5]);
    const whole = truncateSequence(s, 6)!;
    assert.equal(whole.truncated, false);
    assert.equal(whole.trainedTokens, 2);
    // A label at position 0 is never scored, so it does not count.
    assert.equal(
      truncateSequence({ inputIds: Int32Array.from([1, 2]), labels: Int32Array.from([1, -100]) }, 2),
      null,
    );
  });
});

describe("batchOrder", () => {
  it("is a permutation, reproducible from (numRows, epoch, seed), different across epochs and seeds", () => {
    const a = batchOrder(100, 3, 42);
    assert.deepEqual(
      [...a].sort((x, y) => x - y),
      Array.from({ length: 100 }, (_, i) => i),
    );
    assert.deepEqual(batchOrder(100, 3, 42), a);
    assert.notDeepEqual(batchOrder(100, 4, 42), a);
    assert.notDeepEqual(batchOrder(100, 3, 43), a);
    assert.deepEqual(batchOrder(0, 0, 0), []);
  });

  it("epochBatches chunks the order; the last batch may be short", () => {
    const batches = epochBatches(10, 4, 1, 7);
    assert.deepEqual(
      batches.map((b) => b.length),
      [4, 4, 2],
    );
    assert.deepEqual(batches.flat(), batchOrder(10, 1, 7));
  });
});
