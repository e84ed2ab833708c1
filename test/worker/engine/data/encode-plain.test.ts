import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IGNORE_INDEX } from "../../../../worker/engine/data/batch.js";
import { encodePromptCompletion, encodeText } from "../../../../worker/engine/data/encode-plain.js";
import { encodePreference } from "../../../../worker/engine/data/encode-preference.js";
import { realTokenizer, realTokenizerAndTemplate } from "./real-tokenizers.js";

const trainedIds = (labels: Int32Array) => [...labels].filter((l) => l !== IGNORE_INDEX);

describe("encodePromptCompletion", () => {
  it("llama3: bos + prompt untrained; completion + eos trained", async () => {
    const tok = await realTokenizer("llama3");
    const enc = encodePromptCompletion("Translate: chat =", " cat", tok);
    assert.equal(enc.inputIds[0], tok.bosId);
    assert.equal(tok.decode(enc.inputIds), "<|begin_of_text|>Translate: chat = cat<|eot_id|>");
    assert.equal(tok.decode(trainedIds(enc.labels)), " cat<|eot_id|>");
    const promptLen = 1 + tok.encode("Translate: chat =").length;
    assert.ok([...enc.labels.slice(0, promptLen)].every((l) => l === IGNORE_INDEX));
  });

  it("qwen3: no bos; an eos already at the end is not doubled", async () => {
    const tok = await realTokenizer("qwen3");
    const enc = encodePromptCompletion("Q:", " A<|im_end|>", tok);
    assert.equal(tok.decode(enc.inputIds), "Q: A<|im_end|>");
    assert.equal(tok.decode(trainedIds(enc.labels)), " A<|im_end|>");
  });
});

describe("encodeText", () => {
  it("every token is a label, bos … eos", async () => {
    const tok = await realTokenizer("llama3");
    const enc = encodeText("Plain text for pre-training.", tok);
    assert.deepEqual([...enc.labels], [...enc.inputIds]);
    assert.equal(enc.inputIds[0], tok.bosId);
    assert.equal(enc.inputIds[enc.inputIds.length - 1], tok.eosId);
    assert.equal(tok.decode(enc.inputIds), "<|begin_of_text|>Plain text for pre-training.<|eot_id|>");
  });
});

describe("encodePreference", () => {
  for (const model of ["llama3", "qwen3"] as const) {
    it(`${model}: one prompt, and each answer's ids/labels are the answer plus its end-of-turn token`, async () => {
      const { tokenizer, template } = await realTokenizerAndTemplate(model);
      const pair = encodePreference(
        {
          input: {
            messages: [
              { role: "user", content: "Name a color." },
              { role: "assistant", content: "Blue." },
              { role: "user", content: "Another one?" },
            ],
          },
          preferred_output: [{ role: "assistant", content: "Green." }],
          non_preferred_output: [{ role: "assistant", content: "No." }],
        },
        tokenizer,
        template,
      );
      const eot = model === "llama3" ? "<|eot_id|>" : "<|im_end|>";
      const think = model === "qwen3" ? "<think>\n\n</think>\n\n" : "";
      assert.equal(tokenizer.decode(pair.chosenIds), `${think}Green.${eot}`);
      assert.equal(tokenizer.decode(pair.rejectedIds), `${think}No.${eot}`);
      assert.deepEqual([...pair.chosenLabels], [...pair.chosenIds]);
      assert.deepEqual([...pair.rejectedLabels], [...pair.rejectedIds]);
      const prompt = tokenizer.decode(pair.promptIds);
      assert.ok(prompt.includes("Blue."), "earlier assistant turns are context");
      assert.ok(
        prompt.endsWith(
          model === "llama3"
            ? "<|start_header_id|>assistant<|end_header_id|>\n\n"
            : "<|im_start|>assistant\n",
        ),
      );
    });
  }
});
