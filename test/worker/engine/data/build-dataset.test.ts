import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { IGNORE_INDEX } from "../../../../worker/engine/data/batch.js";
import {
  buildDataset,
  buildPreferenceDataset,
  collatePreferencePairs,
  truncatePair,
} from "../../../../worker/engine/data/build-dataset.js";
import type { ChatTemplate } from "../../../../worker/engine/hf/chat-template.js";
import type { HfTokenizer } from "../../../../worker/engine/hf/tokenizer.js";
import { realTokenizerAndTemplate } from "./real-tokenizers.js";

const chat = (user: string, answer: string) =>
  JSON.stringify({
    messages: [
      { role: "user", content: user },
      { role: "assistant", content: answer },
    ],
  });

const LONG = Array.from({ length: 80 }, (_, i) => `word${i}`).join(" ");

const LINES = [
  chat("Hi", "Hello there!"), // 1 kept
  "", // 2 blank
  "not json", // 3 invalid_json
  JSON.stringify({ messages: [] }), // 4 refused by validateExample
  JSON.stringify({ prompt: "2+2=", completion: " 4" }), // 5 kept
  JSON.stringify({ text: "Some plain text." }), // 6 kept
  JSON.stringify({
    input: { messages: [{ role: "user", content: "q" }] },
    preferred_output: [{ role: "assistant", content: "a" }],
    non_preferred_output: [{ role: "assistant", content: "b" }],
  }), // 7 unsupported_format in SFT
  chat(LONG, "short"), // 8 the answer falls beyond max_seq_length: dropped
  chat("Tell me a story", LONG), // 9 truncated, kept
];

describe("buildDataset", () => {
  let tokenizer: HfTokenizer;
  let template: ChatTemplate;
  before(async () => {
    ({ tokenizer, template } = await realTokenizerAndTemplate("qwen3"));
  });

  it("counts, line numbers and codes for every kind of problem", () => {
    const { stats } = buildDataset(LINES, tokenizer, template, { maxSeqLength: 64 });
    assert.equal(stats.lines, 8);
    assert.equal(stats.examples, 4);
    assert.equal(stats.invalid, 3);
    assert.equal(stats.dropped, 1);
    assert.equal(stats.truncated, 1);
    assert.equal(stats.errorCount, 4);
    assert.deepEqual(
      stats.errors.map((e) => e.line),
      [3, 4, 7, 8],
    );
    assert.equal(stats.errors[0].code, "invalid_json");
    assert.ok(stats.errors[1].code.length > 0 && stats.errors[1].code !== "invalid_json");
    assert.equal(stats.errors[2].code, "unsupported_format");
    assert.equal(stats.errors[3].code, "truncated_away");
    assert.match(stats.errors[3].message, /max_seq_length 64/);
    assert.deepEqual(stats.formats, { chat: 3, preference: 1, prompt_completion: 1, text: 1 });
    assert.deepEqual(stats.warnings, []);
  });

  for (const packing of [true, false]) {
    it(`${packing ? "packed" : "padded"} rows: token counts, segment starts unlabeled, rows fit max_seq_length`, () => {
      const { rows, batch, stats } = buildDataset(LINES, tokenizer, template, { maxSeqLength: 64, packing });
      assert.equal(batch.batchSize, rows.length);
      assert.equal(stats.rows, rows.length);
      if (packing) assert.ok(rows.length < stats.examples);
      else assert.equal(rows.length, stats.examples);
      let real = 0;
      let labeled = 0;
      for (let i = 0; i < batch.segmentIds.length; i++) {
        if (batch.segmentIds[i] >= 0) real++;
        if (batch.labels[i] !== IGNORE_INDEX) labeled++;
        const t = i % batch.seqLen;
        if (batch.segmentIds[i] >= 0 && (t === 0 || batch.segmentIds[i - 1] !== batch.segmentIds[i])) {
          assert.equal(batch.labels[i], IGNORE_INDEX, `segment start at ${i}`);
          assert.equal(batch.positionIds[i], 0);
        }
      }
      assert.equal(real, stats.totalTokens);
      assert.equal(labeled, stats.trainedTokens);
      assert.ok(rows.every((r) => r.inputIds.length <= 64));
      const slots = packing ? rows.length * 64 : rows.length * batch.seqLen;
      assert.equal(stats.packingEfficiency, stats.totalTokens / slots);
    });
  }

  it("batchSize: efficiency over epoch 0's batches, each padded to its longest row", () => {
    const { rows, stats } = buildDataset(LINES, tokenizer, template, {
      maxSeqLength: 64,
      packing: false,
      batchSize: 4,
    });
    const total = rows.reduce((n, r) => n + r.inputIds.length, 0);
    assert.ok(stats.packingEfficiency >= total / (rows.length * 64) && stats.packingEfficiency <= 1);
  });

  it("tokenizes thousands of multi-turn conversations in seconds", (t) => {
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const messages: object[] = [{ role: "system", content: `You are assistant ${i}.` }];
      for (let k = 0; k < 3; k++) {
        messages.push({
          role: "user",
          content: `Question ${i}.${k}: what is ${i} times ${k + 3}? Explain the steps.`,
        });
        messages.push({
          role: "assistant",
          content: `It is ${i * (k + 3)}: multiply the units, carry, then add.`,
        });
      }
      lines.push(JSON.stringify({ messages }));
    }
    const start = performance.now();
    const { stats } = buildDataset(lines, tokenizer, template, { maxSeqLength: 1024 });
    const seconds = (performance.now() - start) / 1000;
    t.diagnostic(
      `2000 conversations (7 messages, ${stats.totalTokens} tokens) in ${seconds.toFixed(2)} s; ` +
        `packing efficiency ${stats.packingEfficiency.toFixed(3)}`,
    );
    assert.equal(stats.examples, 2000);
    assert.ok(seconds < 60, `took ${seconds} s`);
  });
});

describe("buildPreferenceDataset", () => {
  it("pairs for preference lines, others refused, and a DPO batch of chosen then rejected rows", async () => {
    const { tokenizer, template } = await realTokenizerAndTemplate("llama3");
    const { pairs, stats } = buildPreferenceDataset([LINES[6], LINES[0]], tokenizer, template, {
      maxSeqLength: 64,
    });
    assert.equal(pairs.length, 1);
    assert.equal(pairs[0].line, 1);
    assert.deepEqual(
      stats.errors.map((e) => [e.line, e.code]),
      [[2, "unsupported_format"]],
    );
    assert.equal(tokenizer.decode(pairs[0].chosenIds), "a<|eot_id|>");
    assert.equal(tokenizer.decode(pairs[0].rejectedIds), "b<|eot_id|>");
    const batch = collatePreferencePairs(pairs, tokenizer.padId);
    assert.equal(batch.batchSize, 2);
    const p = pairs[0].promptIds.length;
    const rowLabels = (r: number) => [...batch.labels.slice(r * batch.seqLen, (r + 1) * batch.seqLen)];
    assert.deepEqual(
      rowLabels(0).filter((l) => l !== IGNORE_INDEX),
      [...pairs[0].chosenLabels],
    );
    assert.deepEqual(
      rowLabels(1).filter((l) => l !== IGNORE_INDEX),
      [...pairs[0].rejectedLabels],
    );
    assert.ok(
      rowLabels(0)
        .slice(0, p)
        .every((l) => l === IGNORE_INDEX),
    );
  });

  it("keeps the end of a long prompt and the whole answers", async () => {
    const { tokenizer, template } = await realTokenizerAndTemplate("llama3");
    const line = JSON.stringify({
      input: { messages: [{ role: "user", content: LONG }] },
      preferred_output: [{ role: "assistant", content: "a" }],
      non_preferred_output: [{ role: "assistant", content: "b" }],
    });
    const full = buildPreferenceDataset([line], tokenizer, template, { maxSeqLength: 4096 }).pairs[0];
    const { pairs, stats } = buildPreferenceDataset([line], tokenizer, template, { maxSeqLength: 32 });
    assert.equal(pairs.length, 1);
    assert.equal(stats.truncated, 1);
    const p = pairs[0];
    assert.equal(p.promptIds.length + Math.max(p.chosenIds.length, p.rejectedIds.length), 32);
    assert.deepEqual([...p.promptIds], [...full.promptIds.slice(full.promptIds.length - p.promptIds.length)]);
    assert.deepEqual([...p.chosenIds], [...full.chosenIds]);
    assert.deepEqual([...p.rejectedLabels], [...full.rejectedLabels]);
  });

  it("cuts long answers after the prompt has given up half the room, and drops what cannot fit", () => {
    const ids = (n: number, from: number) => Int32Array.from({ length: n }, (_, i) => from + i);
    const pair = {
      promptIds: ids(10, 100),
      chosenIds: ids(30, 200),
      chosenLabels: ids(30, 200),
      rejectedIds: ids(5, 300),
      rejectedLabels: ids(5, 300),
    };
    const cut = truncatePair(pair, 16)!;
    assert.deepEqual([...cut.pair.promptIds], [...ids(8, 102)]);
    assert.deepEqual([...cut.pair.chosenIds], [...ids(8, 200)]);
    assert.deepEqual([...cut.pair.rejectedIds], [...ids(5, 300)]);
    assert.equal(truncatePair(pair, 64)!.truncated, false);
    assert.equal(truncatePair(pair, 1), null);
    const unscored = { ...pair, rejectedLabels: new Int32Array(5).fill(IGNORE_INDEX) };
    assert.equal(truncatePair(unscored, 16), null);
  });
});
