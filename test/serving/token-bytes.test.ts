// Logprob `bytes` are each token's own raw bytes (OpenAI's definition), also for tokens that hold
// part of a UTF-8 character, so joining them rebuilds the text; `token` may show U+FFFD.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { chatLogprobs } from "../../src/http/chat/completion-objects.js";
import { tokenBytes } from "../../src/serving/token-bytes.js";
import { ensureTinyModel } from "../../worker/engine/hf/tiny-model.js";
import { type HfTokenizer, loadTokenizer } from "../../worker/engine/hf/tokenizer.js";
import { realTokenizer } from "../worker/engine/data/real-tokenizers.js";

const TEXT = "naïve café → 東京 🙂 ꙮ𓀀𝔘 ok";

function check(tokenizer: HfTokenizer) {
  const ids = tokenizer.encode(TEXT, { addSpecialTokens: false });
  const tokens = ids.map((id) => ({ id, logprob: -1, topLogprobs: [{ id, logprob: -1 }] }));
  const entries = chatLogprobs(tokenizer, tokens);
  assert.ok(
    entries.some((e) => e.token.includes("\uFFFD")),
    "the text has tokens that hold part of a character",
  );
  assert.equal(Buffer.from(entries.flatMap((e) => e.bytes)).toString("utf8"), TEXT);
  assert.equal(Buffer.from(entries.flatMap((e) => e.top_logprobs[0].bytes)).toString("utf8"), TEXT);
}

describe("token bytes", () => {
  let dir: string;
  let tiny: HfTokenizer;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "token-bytes-"));
    tiny = await loadTokenizer(path.join(dir, await ensureTinyModel(dir)));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("tiny-chatml (byte-level BPE): partial characters keep their bytes", () => {
    check(tiny);
    const [id] = tiny.encode("é", { addSpecialTokens: false });
    assert.deepEqual([...tokenBytes(tiny, id)], [0xc3]);
  });

  it("special tokens are their content's bytes", () => {
    const id = tiny.tokenToId("<|im_end|>")!;
    assert.equal(Buffer.from(tokenBytes(tiny, id)).toString("utf8"), "<|im_end|>");
  });

  it("Llama 3 and Qwen3 tokenizers", async () => {
    check(await realTokenizer("llama3"));
    check(await realTokenizer("qwen3"));
  });
});
