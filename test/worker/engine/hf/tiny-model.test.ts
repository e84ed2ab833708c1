import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { readEosTokenIds } from "../../../../worker/engine/hf/model-folder.js";
import { ensureTinyModel, TINY_MODEL_ID } from "../../../../worker/engine/hf/tiny-model.js";
import { loadModel } from "../../../../worker/engine/model/load-model.js";

let root: string;
let folder: string;
before(async () => {
  await tf.setBackend("cpu");
  root = await mkdtemp(path.join(tmpdir(), "tiny-model-"));
  folder = path.join(root, "a", await ensureTinyModel(path.join(root, "a")));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const json = async (file: string) => JSON.parse(await readFile(path.join(folder, file), "utf8"));
const hashes = async (dir: string) => {
  const out: Record<string, string> = {};
  for (const f of (await readdir(dir)).sort())
    out[f] = createHash("sha256")
      .update(await readFile(path.join(dir, f)))
      .digest("hex");
  return out;
};

describe("tiny-chatml default model", () => {
  test("deterministic: two writes are byte-identical; concurrent callers both succeed", async () => {
    const ids = await Promise.all([0, 1, 2].map(() => ensureTinyModel(path.join(root, "b"))));
    assert.deepEqual(ids, [TINY_MODEL_ID, TINY_MODEL_ID, TINY_MODEL_ID]);
    assert.deepEqual(await hashes(path.join(root, "b", TINY_MODEL_ID)), await hashes(folder));
    assert.deepEqual(
      (await readdir(path.join(root, "b"))).filter((f) => f !== TINY_MODEL_ID),
      [],
      "no temp folders left",
    );
  });

  test("loads as a LlamaForCausalLM with a few hundred thousand parameters", async () => {
    const m = await loadModel(folder);
    assert.equal(m.config.architecture, "LlamaForCausalLM");
    const n = m.numBaseParameters();
    assert.ok(n > 100_000 && n < 1_000_000, `${n} parameters`);
    m.dispose();
  });

  test("the tokenizer loads with @huggingface/tokenizers and round-trips arbitrary UTF-8", async () => {
    const tok = new Tokenizer(await json("tokenizer.json"), await json("tokenizer_config.json"));
    for (const text of [
      "Hello the world, and you!",
      "héllo 世界 🎉\n\ttabs  and  spaces",
      "\u0000\u007f\u00ff end",
      "<|im_end|> as text",
    ]) {
      const { ids } = tok.encode(text, { add_special_tokens: false });
      assert.equal(tok.decode(ids, { skip_special_tokens: false }), text);
    }
    const { ids } = tok.encode("<|im_start|>user\nhi<|im_end|>\n");
    const config = await json("config.json");
    assert.equal(ids[0], tok.token_to_id("<|im_start|>"));
    assert.ok(ids.includes(config.eos_token_id), "<|im_end|> is one special token, the eos");
    assert.ok(ids.every((id: number) => id < config.vocab_size));
    const merged = tok.encode(" the", { add_special_tokens: false }).ids;
    assert.equal(merged.length, 1, "merges apply");
  });

  test("ChatML template with eos <|im_end|>; generation config stops on it", async () => {
    const tc = await json("tokenizer_config.json");
    assert.equal(tc.eos_token, "<|im_end|>");
    const text = new Template(tc.chat_template).render({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Hello" },
      ],
      add_generation_prompt: true,
    });
    assert.equal(
      text,
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>assistant\n",
    );
    const tok = new Tokenizer(await json("tokenizer.json"), tc);
    const m = await loadModel(folder);
    const eos = await readEosTokenIds(folder, m.config);
    m.dispose();
    assert.ok(eos.includes(tok.token_to_id("<|im_end|>") as number));
  });
});
