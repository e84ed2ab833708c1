// The JSON automaton accepts exactly the outputs it should, and the vocabulary-trie constraint
// drives any logits (random here) to JSON that parses and follows the schema.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { jsonConstraint, vocabTrie } from "../../src/serving/json-constraint.js";
import {
  ANY_OBJECT,
  compileSchema,
  initialState,
  isComplete,
  type JsonState,
  type SchemaNode,
  step,
  UnsupportedSchemaError,
} from "../../src/serving/json-grammar.js";
import { adjustLogits } from "../../worker/engine/generation/generate.js";
import { ensureTinyModel } from "../../worker/engine/hf/tiny-model.js";
import { type HfTokenizer, loadTokenizer } from "../../worker/engine/hf/tokenizer.js";
import { Rng } from "../../worker/engine/train/rng.js";
import { realTokenizer } from "../worker/engine/data/real-tokenizers.js";

function accepts(node: SchemaNode, text: string): boolean {
  let s: JsonState | null = initialState(node);
  for (const b of Buffer.from(text, "utf8")) {
    s = step(s, b);
    if (s === null) return false;
  }
  return isComplete(s);
}

const SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string" },
    age: { type: "integer" },
    tags: { type: "array", items: { enum: ["x", "y"] } },
    nick: { type: ["string", "null"] },
  },
  required: ["name", "age"],
  additionalProperties: false,
};

describe("JSON grammar", () => {
  it("json_object: objects with any values, compact or with single spaces", () => {
    for (const ok of [
      "{}",
      '{"a":1}',
      '{"a": [1, 2.5e-3, "x\\n\\u00e9", true, null, {"b": false}]}',
      '{"é":"ü"}',
    ])
      assert.ok(accepts(ANY_OBJECT, ok), ok);
    for (const bad of [
      "[1]",
      '{"a":1,}',
      '{"a" :1}',
      '{"a":01}',
      '{"a":1',
      '"x"',
      '{"a":tru}',
      '{"a":"\u0001"}',
      '{"a":  1}',
    ])
      assert.ok(!accepts(ANY_OBJECT, bad), bad);
  });

  it("schema: keys in order, required present, optional may be left out, types and enums", () => {
    const node = compileSchema(SCHEMA);
    assert.ok(accepts(node, '{"name":"Al","age":3}'));
    assert.ok(accepts(node, '{"name": "Al", "age": -3, "tags": ["x", "y"], "nick": null}'));
    assert.ok(accepts(node, '{"name":"Al","age":3,"nick":"A"}'));
    for (const bad of [
      '{"age":3,"name":"Al"}',
      '{"name":"Al"}',
      '{"name":"Al","age":3.5}',
      '{"name":"Al","age":3,"tags":["z"]}',
      '{"name":"Al","age":3,"other":1}',
      '{"name":1,"age":3}',
    ])
      assert.ok(!accepts(node, bad), bad);
  });

  it("unsupported keywords are named", () => {
    assert.throws(
      () =>
        compileSchema({
          type: "object",
          properties: { a: { type: "string", format: "email", pattern: "x" } },
        }),
      (e: unknown) =>
        e instanceof UnsupportedSchemaError &&
        /'format', 'pattern'/.test(e.message) &&
        /properties\.a/.test(e.message),
    );
    assert.throws(
      () => compileSchema({ anyOf: [{ type: "object" }, { type: "object", properties: {} }] }),
      UnsupportedSchemaError,
    );
  });

  it("penalties and bias as OpenAI defines them", () => {
    const logits = new Float32Array([1, 1, 1, 1]);
    const out = adjustLogits(
      logits,
      new Map([
        [1, 3],
        [2, 1],
      ]),
      0.5,
      0.25,
      new Map([[3, -100]]),
    );
    assert.deepEqual([...out], [1, 1 - 3 * 0.5 - 0.25, 1 - 0.5 - 0.25, -99]);
    assert.equal(
      adjustLogits(logits, new Map(), 1, 1, undefined),
      logits,
      "nothing to apply: the same array",
    );
  });
});

describe("JSON constraint over a real vocabulary", () => {
  let dir: string;
  let tiny: HfTokenizer;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "json-grammar-"));
    tiny = await loadTokenizer(path.join(dir, await ensureTinyModel(dir)));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** Decode with random logits under the constraint until an end token: the text. */
  function decode(tokenizer: HfTokenizer, node: SchemaNode, seed: number, vocab: number): string | null {
    const stop = tokenizer.eosId ?? 0;
    const trie = vocabTrie(tokenizer);
    const constrain = jsonConstraint(node, trie, new Set([stop]));
    const rng = Rng.fromSeed(seed);
    const ids: number[] = [];
    for (let i = 0; i < 400; i++) {
      const logits = new Float32Array(vocab);
      for (let k = 0; k < vocab; k++) logits[k] = rng.nextFloat() * 4;
      logits[stop] += 2; // an eager end-of-turn: the mask must hold it back until the value is complete
      constrain(logits, ids);
      let best = 0;
      for (let k = 1; k < vocab; k++) if (logits[k] > logits[best]) best = k;
      if (best === stop) return Buffer.concat(ids.map((id) => Buffer.from(trie.bytes[id]))).toString("utf8");
      ids.push(best);
    }
    return null;
  }

  it("tiny-chatml: random logits become valid JSON of the schema", () => {
    const node = compileSchema(SCHEMA);
    let finished = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const text = decode(tiny, node, seed, tiny.vocabSize);
      if (text === null) continue;
      finished++;
      const v = JSON.parse(text);
      assert.equal(typeof v.name, "string");
      assert.ok(Number.isInteger(v.age));
    }
    assert.ok(finished >= 10, `${finished} of 20 finished within 400 tokens`);
  });

  it("Llama 3 (128k tokens, multi-byte tokens): json_object", async () => {
    const llama = await realTokenizer("llama3");
    const text = decode(
      llama,
      compileSchema({ type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] }),
      3,
      llama.vocabSize,
    );
    assert.ok(text !== null);
    assert.equal(typeof JSON.parse(text).ok, "boolean");
  });
});
