// The order rows are visited in during an epoch: a seeded Fisher–Yates shuffle whose seed mixes the
// job's seed with the epoch number, so epoch e's order is a function of (numRows, e, seed) alone and
// a resumed run reproduces it without replaying earlier epochs.

import { mulberry32 } from "./mulberry32.js";

/** A 32-bit integer hash (the murmur3 finaliser). */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

export function batchOrder(numRows: number, epoch: number, seed: number): number[] {
  if (!(Number.isInteger(numRows) && numRows >= 0)) throw new Error(`batchOrder: bad row count ${numRows}`);
  const seedLow = seed >>> 0;
  const seedHigh = Math.floor(seed / 4294967296) >>> 0;
  const rand = mulberry32(mix32(mix32(seedLow ^ mix32(seedHigh + 0x9e3779b9)) ^ mix32(epoch + 0x7f4a7c15)));
  const order = Array.from({ length: numRows }, (_, i) => i);
  for (let i = numRows - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** The epoch's batches: consecutive chunks of `batchSize` rows of batchOrder (the last may be short). */
export function epochBatches(numRows: number, batchSize: number, epoch: number, seed: number): number[][] {
  if (!(Number.isInteger(batchSize) && batchSize >= 1))
    throw new Error(`epochBatches: bad batch size ${batchSize}`);
  const order = batchOrder(numRows, epoch, seed);
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) out.push(order.slice(i, i + batchSize));
  return out;
}
