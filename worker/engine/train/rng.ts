// A seeded PRNG whose whole state is four uint32 words, so it can be written into a
// checkpoint and restored exactly: xoshiro128** (Blackman & Vigna), seeded through
// splitmix32 so that nearby seeds (0, 1, 2…) give unrelated streams.
// Every random choice in training (shuffle order, dropout seeds, LoRA init seeds) draws
// from one of these; nothing uses Math.random.

export type RngState = [number, number, number, number];

function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Rng {
  private s: Uint32Array;

  private constructor(state: RngState) {
    this.s = Uint32Array.from(state);
    if (this.s.every((w) => w === 0)) throw new Error("Rng state must not be all zeros");
  }

  /** A generator from an integer seed (any safe integer; negative and large seeds are folded). */
  static fromSeed(seed: number): Rng {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    // fold the high bits in so seeds above 2^32 still differ
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    const next = splitmix32((seed >>> 0) ^ Math.imul(hi, 0x27d4eb2d));
    return new Rng([next(), next(), next(), next()]);
  }

  static fromState(state: RngState): Rng {
    if (
      !Array.isArray(state) ||
      state.length !== 4 ||
      !state.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32)
    ) {
      throw new Error(`invalid Rng state ${JSON.stringify(state)}: expected four uint32 words`);
    }
    return new Rng(state);
  }

  state(): RngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }

  /** next uint32 */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** uniform in [0, 1) with 32 bits of resolution */
  nextFloat(): number {
    return this.nextUint32() / 2 ** 32;
  }

  /** uniform integer in [0, n), without modulo bias */
  nextInt(n: number): number {
    if (!(Number.isInteger(n) && n > 0 && n <= 2 ** 32))
      throw new RangeError(`nextInt bound must be in 1..2^32, got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** a non-negative 31-bit integer, e.g. a seed handed to tf.dropout or a LoRA initialiser */
  nextSeed(): number {
    return this.nextUint32() >>> 1;
  }

  /** Fisher–Yates shuffle of 0..n-1 */
  permutation(n: number): number[] {
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = order[i];
      order[i] = order[j];
      order[j] = tmp;
    }
    return order;
  }
}
