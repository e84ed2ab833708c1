import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RefCountedLru } from "../../src/serving/lru-cache.js";

describe("RefCountedLru", () => {
  test("evicts the least recently used beyond capacity, disposing it", async () => {
    const disposed: string[] = [];
    const cache = new RefCountedLru<string, string>(2, (v) => disposed.push(v));
    for (const k of ["a", "b"]) (await cache.acquire(k, async () => `v${k}`)).release();
    (await cache.acquire("a", async () => "never")).release(); // a is now most recent
    (await cache.acquire("c", async () => "vc")).release();
    assert.deepEqual(cache.keys(), ["a", "c"]);
    assert.deepEqual(disposed, ["vb"]);
  });

  test("a value in use is disposed only when its last holder releases it", async () => {
    const disposed: string[] = [];
    const cache = new RefCountedLru<string, string>(1, (v) => disposed.push(v));
    const a = await cache.acquire("a", async () => "va");
    const b = await cache.acquire("b", async () => "vb");
    assert.deepEqual(cache.keys(), ["b"]);
    assert.deepEqual(disposed, [], "a is evicted but still held");
    a.release();
    a.release(); // a second release is a no-op
    assert.deepEqual(disposed, ["va"]);
    b.release();
    assert.deepEqual(disposed, ["va"], "b stays cached");
    cache.clear();
    assert.deepEqual(disposed, ["va", "vb"]);
  });

  test("concurrent acquires of one key share one load; a failed load is not cached", async () => {
    let loads = 0;
    const cache = new RefCountedLru<string, number>(4, () => {});
    const load = async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 10));
      return loads;
    };
    const [x, y] = await Promise.all([cache.acquire("k", load), cache.acquire("k", load)]);
    assert.equal(loads, 1);
    assert.equal(x.value, y.value);
    await assert.rejects(
      cache.acquire("bad", async () => {
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(cache.has("bad"), false);
    assert.equal((await cache.acquire("bad", async () => 7)).value, 7);
  });

  test("capacity must be a positive integer", () => {
    assert.throws(() => new RefCountedLru(0, () => {}), /capacity/);
  });
});
