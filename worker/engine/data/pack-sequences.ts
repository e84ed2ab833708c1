// Packing (docs/training.md, "Batches and packing"): place whole examples into rows of `capacity` tokens, first-fit
// decreasing: longest first, each into the first row (lowest index) with room, a new row when none
// has. A max segment tree over the rows' free space finds that row in O(log rows), so packing n
// examples costs O(n log n).

import type { EncodedSequence } from "./encode-chat.js";
import { rowFromSequences, type SequenceRow } from "./sequence-row.js";

/** Row assignment: bins[r] = indices of the lengths placed in row r, in placement order. */
export function firstFitDecreasing(lengths: readonly number[], capacity: number): number[][] {
  for (let i = 0; i < lengths.length; i++) {
    if (!(lengths[i] >= 0 && lengths[i] <= capacity)) {
      throw new Error(
        `packing: sequence ${i} has ${lengths[i]} tokens, more than the row capacity ${capacity}`,
      );
    }
  }
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  let size = 1;
  while (size < Math.max(1, lengths.length)) size *= 2;
  // free[node] = max free space among the rows under node; leaves are rows (all start empty).
  const free = new Float64Array(2 * size).fill(capacity);
  const bins: number[][] = [];
  for (const i of order) {
    const need = lengths[i];
    let node = 1;
    while (node < size) node = free[2 * node] >= need ? 2 * node : 2 * node + 1;
    const row = node - size;
    free[node] -= need;
    for (node >>= 1; node >= 1; node >>= 1) free[node] = Math.max(free[2 * node], free[2 * node + 1]);
    while (bins.length <= row) bins.push([]);
    bins[row].push(i);
  }
  return bins;
}

export function packSequences(sequences: readonly EncodedSequence[], capacity: number): SequenceRow[] {
  const bins = firstFitDecreasing(
    sequences.map((s) => s.inputIds.length),
    capacity,
  );
  return bins.map((bin) => rowFromSequences(bin.map((i) => sequences[i])));
}
