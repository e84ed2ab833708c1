// Which keys each query may attend to, built on the host once per batch from the segment ids of a
// TokenBatch: same row, same segment (not padding), causal, and within the sliding window when the
// layer has one. Packed rows get block-diagonal causal attention this way, padded rows get the
// usual padding mask; a padding query sees only itself so softmax never meets an empty row.

/** Large negative instead of -inf: exp underflows to exactly 0, and a row is never all -inf. */
export const MASKED = -1e9;

export interface MaskInput {
  batchSize: number;
  seqLen: number;
  segmentIds: Int32Array;
  positionIds?: Int32Array;
}

export function isAllowed(
  segmentIds: Int32Array,
  rowStart: number,
  q: number,
  k: number,
  window: number | null,
): boolean {
  if (k > q) return false;
  if (q === k) return true;
  const sq = segmentIds[rowStart + q];
  if (sq < 0 || sq !== segmentIds[rowStart + k]) return false;
  return window === null || q - k < window;
}

/** allowed[b][q][k] as 0/1, [B, T, T] row-major. */
export function buildAllowedMask(input: MaskInput, window: number | null): Uint8Array {
  const { batchSize: B, seqLen: T, segmentIds } = input;
  const out = new Uint8Array(B * T * T);
  for (let b = 0; b < B; b++) {
    for (let q = 0; q < T; q++) {
      const base = (b * T + q) * T;
      for (let k = 0; k <= q; k++) out[base + k] = isAllowed(segmentIds, b * T, q, k, window) ? 1 : 0;
    }
  }
  return out;
}

/** Additive attention bias [B, T, T]: 0 where allowed, MASKED elsewhere. */
export function buildAttentionBias(input: MaskInput, window: number | null): Float32Array {
  const allowed = buildAllowedMask(input, window);
  const bias = new Float32Array(allowed.length);
  for (let i = 0; i < allowed.length; i++) bias[i] = allowed[i] ? 0 : MASKED;
  return bias;
}

/**
 * Bias [Tq, Tk] for decoding with a KV cache of one sequence: the new queries sit at absolute
 * positions pastLength … pastLength+Tq-1 and see every cached or new key at or before them
 * (and within the window).
 */
export function buildCachedAttentionBias(
  pastLength: number,
  newLength: number,
  window: number | null,
): Float32Array {
  const total = pastLength + newLength;
  const bias = new Float32Array(newLength * total);
  for (let i = 0; i < newLength; i++) {
    const q = pastLength + i;
    for (let k = 0; k < total; k++) {
      const ok = k <= q && (window === null || q - k < window);
      bias[i * total + k] = ok ? 0 : MASKED;
    }
  }
  return bias;
}
