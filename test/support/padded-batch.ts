// A TokenBatch from rows of (ids, labels), right-padded with pad id 0 (label -100, segment -1):
// one sequence per row, positions counting from 0, as the model tests build their batches.
import type { TokenBatch } from "../../worker/engine/data/batch.js";

export function padded(rows: { ids: number[]; labels: number[] }[]): TokenBatch {
  const T = Math.max(...rows.map((r) => r.ids.length));
  const B = rows.length;
  const batch: TokenBatch = {
    batchSize: B,
    seqLen: T,
    inputIds: new Int32Array(B * T),
    labels: new Int32Array(B * T).fill(-100),
    positionIds: new Int32Array(B * T),
    segmentIds: new Int32Array(B * T).fill(-1),
  };
  rows.forEach((r, b) => {
    r.ids.forEach((id, t) => {
      batch.inputIds[b * T + t] = id;
      batch.labels[b * T + t] = r.labels[t];
      batch.positionIds[b * T + t] = t;
      batch.segmentIds[b * T + t] = 0;
    });
  });
  return batch;
}
