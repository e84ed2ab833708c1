// Request → prompt token ids, exactly as training tokenized the same turns (docs/training.md,
// "Templates" and "Tokens and labels"):
//   chat: the model's chat template with add_generation_prompt, message text that spells a special
//         token escaped (a user cannot forge an end-of-turn), then the template's own special
//         tokens as ids and everything else tokenized with special-token parsing off — the same
//         steps as the engine's encodeChat, which cuts training text at the assistant header;
//   completions: the prompt as `{"prompt","completion"}` training encodes it (post-processor
//         prefix such as bos, then the prompt without special tokens).

import { encodeRenderedText, escaperFor } from "../../worker/engine/data/encode-chat.js";
import type { ChatMessage, FunctionTool } from "../../worker/engine/data/example.js";
import {
  type ChatTemplate,
  ChatTemplateError,
  prepareMessagesForTemplate,
} from "../../worker/engine/hf/chat-template.js";
import type { HfTokenizer } from "../../worker/engine/hf/tokenizer.js";
import { invalidRequest } from "../store/domain-error.js";

export interface EncodedPrompt {
  ids: number[];
  /** the rendered text (chat) or the prompt (completions) */
  text: string;
}

export function encodeChatPrompt(
  messages: readonly ChatMessage[],
  tools: readonly FunctionTool[] | null,
  tokenizer: HfTokenizer,
  template: ChatTemplate,
  /** text the assistant's reply is made to start with (a forced tool call), after the generation prompt */
  assistantPrefix = "",
): EncodedPrompt {
  const escaper = escaperFor(tokenizer);
  const prepared = escaper.escapeDeep(prepareMessagesForTemplate(messages));
  let rendered: string;
  try {
    rendered = template.render({
      messages: prepared,
      tools: tools?.length ? escaper.escapeDeep(tools) : null,
      addGenerationPrompt: true,
    });
  } catch (err) {
    // Templates refuse some conversations (e.g. roles that do not alternate): the caller's fault.
    if (err instanceof ChatTemplateError)
      throw invalidRequest(`The model's chat template refused the messages: ${err.message}`, "messages");
    throw err;
  }
  const ids: number[] = [];
  encodeRenderedText(tokenizer, escaper, rendered + assistantPrefix, true, ids);
  return { ids, text: escaper.unescape(rendered) };
}

export function encodeCompletionPrompt(prompt: string, tokenizer: HfTokenizer): EncodedPrompt {
  const ids = [...tokenizer.specialPrefixIds, ...tokenizer.encode(prompt, { addSpecialTokens: false })];
  return { ids, text: prompt };
}
