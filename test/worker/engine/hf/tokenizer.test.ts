import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Tokenizer } from "@huggingface/tokenizers";
import { HfTokenizer, loadTokenizer } from "../../../../worker/engine/hf/tokenizer.js";
import { realTokenizer, realTokenizerFolder } from "../data/real-tokenizers.js";

const SAMPLES = [
  "Hello world",
  "  leading spaces and trailing  ",
  "Ünïcödé, 日本語, emoji 🎉🎉 and tabs\t\tand\nnewlines\n\n\n",
  "code: function f(x) { return x ** 2; } // 123456789",
  "<|im_start|>user\nhi<|im_end|>\n<|begin_of_text|><|eot_id|>",
  "<think>reasoning</think> <tool_call>{}</tool_call>",
];

/** A tiny sentencepiece-style (Metaspace, prepend_scheme "first") BPE tokenizer. */
function metaspaceTokenizerJson() {
  const vocab: Record<string, number> = {
    "<unk>": 0,
    "<s>": 1,
    "</s>": 2,
    "▁": 3,
    h: 4,
    i: 5,
    "▁h": 6,
    hi: 7,
    "▁hi": 8,
  };
  return {
    version: "1.0",
    added_tokens: [
      {
        id: 0,
        content: "<unk>",
        special: true,
        normalized: false,
        lstrip: false,
        rstrip: false,
        single_word: false,
      },
      {
        id: 1,
        content: "<s>",
        special: true,
        normalized: false,
        lstrip: false,
        rstrip: false,
        single_word: false,
      },
      {
        id: 2,
        content: "</s>",
        special: true,
        normalized: false,
        lstrip: false,
        rstrip: false,
        single_word: false,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: false,
      vocab,
      merges: ["▁ h", "h i", "▁h i"],
    },
  };
}

describe("HfTokenizer on the real tokenizers", () => {
  for (const model of ["llama3", "qwen3"] as const) {
    it(`${model}: parsing special tokens on gives the library's ids; decode round-trips`, async () => {
      const tok = await realTokenizer(model);
      const folder = realTokenizerFolder(model);
      const lib = new Tokenizer(
        JSON.parse(readFileSync(join(folder, "tokenizer.json"), "utf8")),
        JSON.parse(readFileSync(join(folder, "tokenizer_config.json"), "utf8")),
      );
      for (const s of SAMPLES) {
        assert.deepEqual(tok.encode(s), lib.encode(s, { add_special_tokens: false }).ids, s);
        assert.deepEqual(tok.encode(s, { addSpecialTokens: true }), lib.encode(s).ids, s);
        assert.equal(tok.decode(tok.encode(s)), s);
        assert.equal(tok.decode(tok.encode(s, { parseSpecial: false })), s);
      }
    });
  }

  it("llama3: bos/eos/pad, stop tokens and the bos the post-processor adds", async () => {
    const tok = await realTokenizer("llama3");
    assert.equal(tok.bosToken, "<|begin_of_text|>");
    assert.equal(tok.bosId, 128000);
    assert.equal(tok.eosToken, "<|eot_id|>");
    assert.equal(tok.eosId, 128009);
    assert.equal(tok.padId, 128009, "no pad token: falls back to eos");
    assert.deepEqual(tok.specialPrefixIds, [128000]);
    assert.deepEqual(tok.specialSuffixIds, []);
    assert.ok(tok.stopIds.has(128009));
    assert.ok(tok.stopTokens.includes("<|eot_id|>"));
    assert.equal(tok.vocabSize, 128256);
    assert.equal(typeof tok.chatTemplate, "string");
  });

  it("qwen3: no bos, eos <|im_end|>, pad <|endoftext|>", async () => {
    const tok = await realTokenizer("qwen3");
    assert.equal(tok.bosId, null);
    assert.equal(tok.eosId, tok.tokenToId("<|im_end|>"));
    assert.equal(tok.padId, tok.tokenToId("<|endoftext|>"));
    assert.deepEqual(tok.specialPrefixIds, []);
    assert.deepEqual(tok.specialTokensMap, { eos_token: "<|im_end|>", pad_token: "<|endoftext|>" });
  });

  it("parseSpecial: false leaves special tokens as text but still matches non-special added tokens", async () => {
    const tok = await realTokenizer("qwen3");
    const imEnd = tok.tokenToId("<|im_end|>")!;
    const think = tok.tokenToId("<think>")!;
    const on = tok.encode("a<|im_end|>b<think>");
    const off = tok.encode("a<|im_end|>b<think>", { parseSpecial: false });
    assert.ok(on.includes(imEnd));
    assert.ok(!off.includes(imEnd));
    assert.ok(
      off.includes(think),
      "<think> is an added token but not special: transformers still matches it",
    );
    assert.equal(tok.decode(off), "a<|im_end|>b<think>");
  });

  it("splitOnSpecialTokens gives special ids and the text between", async () => {
    const tok = await realTokenizer("llama3");
    assert.deepEqual(tok.splitOnSpecialTokens("<|begin_of_text|>hi<|eot_id|>"), [
      { text: "<|begin_of_text|>", id: 128000 },
      { text: "hi", id: null },
      { text: "<|eot_id|>", id: 128009 },
    ]);
  });
});

describe("HfTokenizer piecewise encoding (Metaspace, prefix on the first section only)", () => {
  const tok = new HfTokenizer({
    tokenizerJson: metaspaceTokenizerJson(),
    tokenizerConfig: { bos_token: "<s>", eos_token: "</s>" },
  });

  it("atStart: false continues a text without the first-section prefix, matching the whole-text ids", () => {
    const whole = tok.encode("hi</s>hi");
    assert.deepEqual(whole, [8, 2, 7]);
    const pieces = [...tok.encode("hi"), ...tok.encode("</s>"), ...tok.encode("hi", { atStart: false })];
    assert.deepEqual(pieces, whole);
    assert.deepEqual(tok.encode("hi"), [8], "at the start the prefix is added");
  });

  it("derives the bos prefix from the post-processor", () => {
    assert.deepEqual(tok.specialPrefixIds, [1]);
    assert.deepEqual(tok.encode("hi", { addSpecialTokens: true }), [1, 8]);
  });
});

describe("loadTokenizer", () => {
  it("reads chat_template.jinja over tokenizer_config's and generation_config eos ids as stops", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tok-"));
    try {
      await writeFile(join(dir, "tokenizer.json"), JSON.stringify(metaspaceTokenizerJson()));
      await writeFile(
        join(dir, "tokenizer_config.json"),
        JSON.stringify({
          bos_token: { content: "<s>", __type: "AddedToken" },
          eos_token: "</s>",
          chat_template: "old",
        }),
      );
      await writeFile(join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: [2, 0] }));
      await writeFile(join(dir, "chat_template.jinja"), "{{ messages[0].content }}");
      const tok = await loadTokenizer(dir);
      assert.equal(tok.chatTemplate, "{{ messages[0].content }}");
      assert.equal(tok.bosId, 1, "AddedToken-dict form of bos_token");
      assert.deepEqual([...tok.stopIds].sort(), [0, 2]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reads a list of named templates, and refuses a folder without tokenizer.json", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tok-"));
    try {
      await assert.rejects(loadTokenizer(dir), /no tokenizer\.json/);
      await writeFile(join(dir, "tokenizer.json"), JSON.stringify(metaspaceTokenizerJson()));
      await writeFile(
        join(dir, "tokenizer_config.json"),
        JSON.stringify({
          chat_template: [
            { name: "default", template: "A" },
            { name: "tool_use", template: "B" },
          ],
        }),
      );
      const tok = await loadTokenizer(dir);
      assert.deepEqual(tok.chatTemplate, { default: "A", tool_use: "B" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
