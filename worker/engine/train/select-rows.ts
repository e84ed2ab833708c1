// Cutting micro-batches out of the dataset's rows: gather the chosen rows into one
// TokenBatch and drop trailing columns that are padding in every chosen row, so a padded
// (unpacked) micro-batch is only as long as its longest row, as a Hugging Face collator
// pads "to the longest". Packed rows are full and keep their length.

import { IGNORE_INDEX, type TokenBatch } from "../data/batch.js";

export function selectRows(all: TokenBatch, rows: readonly number[]): TokenBatch {
  const { seqLen } = all;
  if (rows.length === 0) throw new Error("selectRows: no rows chosen");
  let used = 1;
  for (const r of rows) {
    if (!(Number.isInteger(r) && r >= 0 && r < all.batchSize)) {
      throw new Error(`selectRows: row ${r} is outside 0..${all.batchSize - 1}`);
    }
    for (let t = seqLen - 1; t >= used; t--) {
      if (all.segmentIds[r * seqLen + t] !== -1) {
        used = t + 1;
        break;
      }
    }
  }
  const n = rows.length * used;
  const out: TokenBatch = {
    batchSize: rows.length,
    seqLen: used,
    inputIds: new Int32Array(n),
    labels: new Int32Array(n),
    positionIds: new Int32Array(n),
    segmentIds: new Int32Array(n),
  };
  rows.forEach((r, i) => {
    const from = r * seqLen;
    const to = from + used;
    out.inputIds.set(all.inputIds.subarray(from, to), i * used);
    out.labels.set(all.labels.subarray(from, to), i * used);
    out.positionIds.set(all.positionIds.subarray(from, to), i * used);
    out.segmentIds.set(all.segmentIds.subarray(from, to), i * used);
  });
  return out;
}

/** Scored label tokens: labels[t] for t ≥ 1 of each row (the logits at t − 1 predict them). */
export function countLabelTokens(batch: TokenBatch): number {
  let count = 0;
  for (let b = 0; b < batch.batchSize; b++) {
    for (let t = 1; t < batch.seqLen; t++) if (batch.labels[b * batch.seqLen + t] !== IGNORE_INDEX) count++;
  }
  return count;
}

/** Real (non-padding) tokens: what a step trains on and what `trained_tokens` counts. */
export function countRealTokens(batch: TokenBatch): number {
  let count = 0;
  for (const s of batch.segmentIds) if (s !== -1) count++;
  return count;
}
