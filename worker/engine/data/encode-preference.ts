// A preference (DPO) example → the prompt's ids and, for each of the two answers, the answer's ids and
// labels, ready for a DPO loss (log-probabilities summed over the answer's label tokens; docs/training.md).
//
// Each answer is encoded as the conversation `input.messages + [answer]` with only the answer trained
// (earlier assistant turns are context), exactly like a chat example. The prompt is everything before
// the answer's span (it ends with the assistant header); it must come out identical for both answers.
// An answer ends at its end-of-turn token: whatever the template prints after it is dropped.

import type { ChatTemplate } from "../hf/chat-template.js";
import type { HfTokenizer } from "../hf/tokenizer.js";
import { encodeChat } from "./encode-chat.js";
import type { PreferenceExample } from "./example.js";

export interface EncodedPreference {
  promptIds: Int32Array;
  chosenIds: Int32Array;
  chosenLabels: Int32Array;
  rejectedIds: Int32Array;
  rejectedLabels: Int32Array;
}

function encodeAnswer(
  example: PreferenceExample,
  answer: PreferenceExample["preferred_output"],
  tokenizer: HfTokenizer,
  template: ChatTemplate,
  templateKwargs?: Record<string, unknown>,
) {
  const context = example.input.messages.length;
  const enc = encodeChat([...example.input.messages, ...answer], example.input.tools, tokenizer, template, {
    trainMessage: (m, i) => i >= context && m.role === "assistant",
    templateKwargs,
  });
  if (enc.trainedTokenSpans.length === 0) throw new Error("the answer has no assistant message");
  const start = enc.trainedTokenSpans[0].start;
  const end = enc.trainedTokenSpans[enc.trainedTokenSpans.length - 1].end;
  return {
    promptIds: enc.inputIds.slice(0, start),
    ids: enc.inputIds.slice(start, end),
    labels: enc.labels.slice(start, end),
  };
}

export function encodePreference(
  example: PreferenceExample,
  tokenizer: HfTokenizer,
  template: ChatTemplate,
  templateKwargs?: Record<string, unknown>,
): EncodedPreference {
  const chosen = encodeAnswer(example, example.preferred_output, tokenizer, template, templateKwargs);
  const rejected = encodeAnswer(example, example.non_preferred_output, tokenizer, template, templateKwargs);
  const a = chosen.promptIds;
  const b = rejected.promptIds;
  if (a.length !== b.length || a.some((v, i) => v !== b[i])) {
    throw new Error("the prompt tokenizes differently before the preferred and the non-preferred output");
  }
  return {
    promptIds: a,
    chosenIds: chosen.ids,
    chosenLabels: chosen.labels,
    rejectedIds: rejected.ids,
    rejectedLabels: rejected.labels,
  };
}
