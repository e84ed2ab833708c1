/**
 * Shape logic of a (batched, broadcasting) matMul, as tfjs defines it: the last two
 * dimensions are the matrices, the leading ones are batch dimensions that broadcast
 * numpy-style. The plan says which A and B matrix each output matrix is made from,
 * so a GEMM library can be called once per output matrix (or once in all, `foldBatchIntoM`).
 */
export interface BatchMatMulPlan {
  outShape: number[];
  m: number;
  n: number;
  k: number;
  /** For each output matrix, the index of the A (and B) matrix it multiplies. */
  aIndex: number[];
  bIndex: number[];
  /**
   * B is a single matrix and A's batches are contiguous untransposed [M,K] blocks in
   * output order: the whole batch is one GEMM with M·batch rows.
   */
  foldBatchIntoM: boolean;
}

function product(dims: readonly number[]): number {
  let p = 1;
  for (const d of dims) p *= d;
  return p;
}

/** numpy broadcasting of two batch shapes; the error names both full shapes. */
export function broadcastBatchShape(
  a: readonly number[],
  b: readonly number[],
  aFull: readonly number[],
  bFull: readonly number[],
): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(
        `Operands could not be broadcast together with shapes ${aFull} and ${bFull} (batch dims ${a} and ${b}).`,
      );
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** For each index of the broadcast batch `outDims`, the flat index into an operand's `dims`. */
export function broadcastSourceIndex(dims: readonly number[], outDims: readonly number[]): number[] {
  const total = product(outDims);
  const size = product(dims);
  if (
    size === total &&
    dims.length <= outDims.length &&
    dims.every((d, i) => d === outDims[outDims.length - dims.length + i])
  ) {
    return Array.from({ length: total }, (_, i) => i);
  }
  if (size === 1) return new Array(total).fill(0);
  const offset = outDims.length - dims.length;
  const result = new Array<number>(total);
  for (let flat = 0; flat < total; flat++) {
    let rem = flat;
    let src = 0;
    let stride = 1;
    for (let axis = outDims.length - 1; axis >= 0; axis--) {
      const coord = rem % outDims[axis];
      rem = Math.floor(rem / outDims[axis]);
      const dAxis = axis - offset;
      if (dAxis >= 0) {
        const d = dims[dAxis];
        if (d !== 1) src += coord * stride;
        stride *= d;
      }
    }
    result[flat] = src;
  }
  return result;
}

export function planBatchMatMul(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
): BatchMatMulPlan {
  if (aShape.length < 2 || bShape.length < 2) {
    throw new Error(`matMul needs rank ≥ 2 operands, got shapes [${aShape}] and [${bShape}].`);
  }
  const ra = aShape.length;
  const rb = bShape.length;
  const k = transposeA ? aShape[ra - 2] : aShape[ra - 1];
  const kB = transposeB ? bShape[rb - 1] : bShape[rb - 2];
  const m = transposeA ? aShape[ra - 1] : aShape[ra - 2];
  const n = transposeB ? bShape[rb - 2] : bShape[rb - 1];
  // Same wording as tfjs's own kernels, so callers see the familiar error.
  if (k !== kB) {
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${kB}) of Tensors with shapes ${aShape} and ${bShape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const outBatch = broadcastBatchShape(aBatch, bBatch, aShape, bShape);
  const aIndex = broadcastSourceIndex(aBatch, outBatch);
  const bIndex = broadcastSourceIndex(bBatch, outBatch);
  const aIsIdentity = product(aBatch) === aIndex.length && aIndex.every((v, i) => v === i);
  const foldBatchIntoM = !transposeA && product(bBatch) === 1 && aIsIdentity && aIndex.length > 1;
  return { outShape: [...outBatch, m, n], m, n, k, aIndex, bIndex, foldBatchIntoM };
}
