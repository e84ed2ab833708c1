// One row of training data before batching: one example (padding path) or several packed side by
// side (packing path), with the per-token segment index and position ids the model needs.
// Invariant: the first token of every segment has label IGNORE_INDEX, so no label is ever scored
// from the previous segment's last logit (logits at t are scored against labels[t + 1]).

import { IGNORE_INDEX, type TokenBatch } from "./batch.js";
import type { EncodedSequence } from "./encode-chat.js";

export interface SequenceRow {
  inputIds: Int32Array;
  labels: Int32Array;
  /** restart at 0 at each segment */
  positionIds: Int32Array;
  /** 0, 1, 2… per segment; a row holds no padding (padding is added when batching) */
  segmentIds: Int32Array;
}

/** Lay sequences one after another in a single row. */
export function rowFromSequences(sequences: readonly EncodedSequence[]): SequenceRow {
  const length = sequences.reduce((n, s) => n + s.inputIds.length, 0);
  const row: SequenceRow = {
    inputIds: new Int32Array(length),
    labels: new Int32Array(length),
    positionIds: new Int32Array(length),
    segmentIds: new Int32Array(length),
  };
  let at = 0;
  sequences.forEach((s, segment) => {
    const n = s.inputIds.length;
    row.inputIds.set(s.inputIds, at);
    row.labels.set(s.labels, at);
    if (n > 0) row.labels[at] = IGNORE_INDEX;
    for (let k = 0; k < n; k++) row.positionIds[at + k] = k;
    row.segmentIds.fill(segment, at, at + n);
    at += n;
  });
  return row;
}

/**
 * Right-pad rows into one TokenBatch: pads hold `padId`, label IGNORE_INDEX, position 0, segment -1.
 * `seqLen` defaults to the longest row.
 */
export function collateRows(rows: readonly SequenceRow[], padId: number, seqLen?: number): TokenBatch {
  const longest = rows.reduce((m, r) => Math.max(m, r.inputIds.length), 0);
  const T = seqLen ?? longest;
  if (T < longest) throw new Error(`collateRows: a row has ${longest} tokens, more than seqLen ${T}`);
  const B = rows.length;
  const batch: TokenBatch = {
    batchSize: B,
    seqLen: T,
    inputIds: new Int32Array(B * T).fill(padId),
    labels: new Int32Array(B * T).fill(IGNORE_INDEX),
    positionIds: new Int32Array(B * T),
    segmentIds: new Int32Array(B * T).fill(-1),
  };
  rows.forEach((r, b) => {
    batch.inputIds.set(r.inputIds, b * T);
    batch.labels.set(r.labels, b * T);
    batch.positionIds.set(r.positionIds, b * T);
    batch.segmentIds.set(r.segmentIds, b * T);
  });
  return batch;
}

/** Share of a batch's slots that hold real tokens (segment id >= 0). */
export function realTokenShare(batch: TokenBatch): number {
  let real = 0;
  for (let i = 0; i < batch.segmentIds.length; i++) if (batch.segmentIds[i] >= 0) real++;
  return batch.segmentIds.length ? real / batch.segmentIds.length : 0;
}
