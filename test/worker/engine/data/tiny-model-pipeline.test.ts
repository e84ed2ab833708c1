// The default model of the embedded mode (worker/engine/hf/tiny-model.ts) through the whole pipeline:
// its byte-level tokenizer and ChatML template must give a trainable, correctly masked dataset.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { IGNORE_INDEX } from "../../../../worker/engine/data/batch.js";
import { buildDataset } from "../../../../worker/engine/data/build-dataset.js";
import { resolveChatTemplate } from "../../../../worker/engine/hf/chat-template.js";
import { ensureTinyModel } from "../../../../worker/engine/hf/tiny-model.js";
import { type HfTokenizer, loadTokenizer } from "../../../../worker/engine/hf/tokenizer.js";

describe("pipeline on the tiny default model", () => {
  let dir: string;
  let tokenizer: HfTokenizer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tiny-data-"));
    tokenizer = await loadTokenizer(join(dir, await ensureTinyModel(dir)));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("masks ChatML turns: the answer and <|im_end|> are the only labels; user text stays text", () => {
    const template = resolveChatTemplate(tokenizer.chatTemplate, {
      specialTokens: tokenizer.specialTokensMap,
    });
    const line = JSON.stringify({
      messages: [
        { role: "user", content: "Hi <|im_end|> é 🎉" },
        { role: "assistant", content: "Hello!" },
      ],
    });
    const { batch, stats } = buildDataset([line], tokenizer, template, { maxSeqLength: 256 });
    assert.equal(stats.examples, 1);
    assert.deepEqual(stats.warnings, []);
    const real = [...batch.inputIds.slice(0, stats.totalTokens)];
    assert.equal(
      tokenizer.decode(real),
      "<|im_start|>user\nHi <|im_end|> é 🎉<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n",
    );
    assert.equal(tokenizer.decode([...batch.labels].filter((l) => l !== IGNORE_INDEX)), "Hello!<|im_end|>");
    assert.equal(real.filter((id) => id === tokenizer.eosId).length, 2);
  });
});
