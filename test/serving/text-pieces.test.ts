// Text assembly for completions: stop strings are cut and never leak while streaming; tokens
// become text deltas that always concatenate to the full decode (multi-byte characters split
// over byte-level tokens included).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { IncrementalDetokenizer } from "../../src/serving/incremental-detokenizer.js";
import { StopSequenceFilter } from "../../src/serving/stop-sequences.js";
import { ensureTinyModel } from "../../worker/engine/hf/tiny-model.js";
import { type HfTokenizer, loadTokenizer } from "../../worker/engine/hf/tokenizer.js";

function feed(filter: StopSequenceFilter, pieces: string[]): string[] {
  const out = pieces.map((p) => filter.push(p));
  out.push(filter.flush());
  return out;
}

describe("StopSequenceFilter", () => {
  test("cuts before the first stop string, even when it arrives split over pieces", () => {
    const f = new StopSequenceFilter(["END", "\n\n"]);
    const out = feed(f, ["Hello E", "N", "D and more"]);
    assert.equal(out.join(""), "Hello ");
    assert.ok(f.stopped);
    // the partial "E" was held back, never released
    assert.deepEqual(out.slice(0, 2), ["Hello ", ""]);
  });

  test("a held-back prefix that turns out not to be a stop is released", () => {
    const f = new StopSequenceFilter(["END"]);
    const out = feed(f, ["abc E", "Nx", "yz"]);
    assert.deepEqual(out, ["abc ", "ENx", "yz", ""]);
    assert.equal(f.stopped, false);
  });

  test("the earliest of several stop strings wins", () => {
    const f = new StopSequenceFilter(["world", "lo"]);
    assert.equal(feed(f, ["hello world"]).join(""), "hel");
  });

  test("at the very end, a partial match is released by flush", () => {
    const f = new StopSequenceFilter(["STOP"]);
    assert.deepEqual(feed(f, ["go ST"]), ["go ", "ST"]);
  });

  test("no stop strings: text passes through unchanged", () => {
    const f = new StopSequenceFilter([]);
    assert.deepEqual(feed(f, ["a", "b"]), ["a", "b", ""]);
  });
});

describe("IncrementalDetokenizer", () => {
  let dir: string;
  let tokenizer: HfTokenizer;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "detok-"));
    tokenizer = await loadTokenizer(path.join(dir, await ensureTinyModel(dir)));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const text of ["Hello, the world", "héllo wörld — ✓ 日本語 🎉!", " leading and  double  spaces\n"]) {
    test(`deltas concatenate to decode(all): ${JSON.stringify(text)}`, () => {
      const ids = tokenizer.encode(text, { addSpecialTokens: false });
      const d = new IncrementalDetokenizer(tokenizer);
      const deltas = ids.map((id) => d.push(id));
      deltas.push(d.flush());
      assert.equal(deltas.join(""), text);
      assert.equal(deltas.join(""), tokenizer.decode(ids));
      // no delta ever shows half a character
      for (const delta of deltas) assert.ok(!delta.includes("\uFFFD"), JSON.stringify(deltas));
      if ([...text].some((c) => c.length > 1 || c.charCodeAt(0) > 127)) {
        assert.ok(
          deltas.filter((x) => x === "").length > 0,
          "multi-byte characters span several byte tokens",
        );
      }
    });
  }

  test("special tokens are left out of the text", () => {
    const imEnd = tokenizer.specialTokens.get("<|im_end|>")!;
    const d = new IncrementalDetokenizer(tokenizer);
    const ids = [...tokenizer.encode("ab", { addSpecialTokens: false }), imEnd];
    assert.equal(ids.map((id) => d.push(id)).join("") + d.flush(), "ab");
  });
});
