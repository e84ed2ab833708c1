import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../../../worker/engine/train/rng.js";

test("same seed, same stream; different seeds differ", () => {
  const a = Rng.fromSeed(42);
  const b = Rng.fromSeed(42);
  const c = Rng.fromSeed(43);
  const sa = Array.from({ length: 16 }, () => a.nextUint32());
  const sb = Array.from({ length: 16 }, () => b.nextUint32());
  const sc = Array.from({ length: 16 }, () => c.nextUint32());
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
  // seeds that differ only above bit 32 must still differ
  assert.notEqual(Rng.fromSeed(2 ** 33).nextUint32(), Rng.fromSeed(0).nextUint32());
});

test("state round-trips through JSON and continues the same stream", () => {
  const a = Rng.fromSeed(7);
  for (let i = 0; i < 5; i++) a.nextUint32();
  const saved = JSON.parse(JSON.stringify(a.state()));
  const b = Rng.fromState(saved);
  assert.deepEqual(
    Array.from({ length: 8 }, () => b.nextFloat()),
    Array.from({ length: 8 }, () => a.nextFloat()),
  );
  assert.throws(() => Rng.fromState([0, 0, 0, 0]), /all zeros/);
  assert.throws(() => Rng.fromState([1, 2, 3] as never), /four uint32/);
});

test("floats are in [0, 1) and roughly uniform; permutation is a permutation", () => {
  const r = Rng.fromSeed(1);
  let sum = 0;
  for (let i = 0; i < 10000; i++) {
    const x = r.nextFloat();
    assert.ok(x >= 0 && x < 1);
    sum += x;
  }
  assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02, `mean ${sum / 10000}`);
  const p = r.permutation(50);
  assert.deepEqual(
    [...p].sort((x, y) => x - y),
    Array.from({ length: 50 }, (_, i) => i),
  );
  assert.notDeepEqual(
    p,
    Array.from({ length: 50 }, (_, i) => i),
  );
  const counts = new Array(3).fill(0);
  for (let i = 0; i < 3000; i++) counts[r.nextInt(3)]++;
  for (const c of counts) assert.ok(c > 900 && c < 1100, `nextInt counts ${counts}`);
});
