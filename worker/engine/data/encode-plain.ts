// The two non-chat formats (our extensions, docs/training.md), tokenized like Hugging Face's
// `tokenizer(text)` (special tokens in the text are recognised: there is no template whose turns a
// user could forge, and continued pre-training data may contain them on purpose):
//   {"prompt","completion"}: [post-processor prefix, e.g. bos] prompt | completion eos
//                            labels: -100 on the prompt, ids on completion + eos
//   {"text"}:                [bos] text eos, every token a label
// The prompt and the completion are tokenized separately (cut at the boundary), as at inference.

import type { HfTokenizer } from "../hf/tokenizer.js";
import { IGNORE_INDEX } from "./batch.js";
import type { EncodedSequence } from "./encode-chat.js";

function eosOf(tokenizer: HfTokenizer): number {
  if (tokenizer.eosId === null) throw new Error("the tokenizer has no eos token: cannot end a completion");
  return tokenizer.eosId;
}

/** Append eos unless the ids already end with it. */
function withEos(ids: number[], eos: number): number[] {
  return ids.length && ids[ids.length - 1] === eos ? ids : [...ids, eos];
}

export function encodePromptCompletion(
  prompt: string,
  completion: string,
  tokenizer: HfTokenizer,
): EncodedSequence {
  const promptIds = tokenizer.encode(prompt, { addSpecialTokens: false });
  const head = [...tokenizer.specialPrefixIds, ...promptIds];
  const tail = withEos(tokenizer.encode(completion, { atStart: head.length === 0 }), eosOf(tokenizer));
  const inputIds = Int32Array.from([...head, ...tail]);
  const labels = new Int32Array(inputIds.length).fill(IGNORE_INDEX);
  labels.set(tail, head.length);
  return { inputIds, labels };
}

export function encodeText(text: string, tokenizer: HfTokenizer): EncodedSequence {
  const ids = withEos([...tokenizer.specialPrefixIds, ...tokenizer.encode(text)], eosOf(tokenizer));
  const inputIds = Int32Array.from(ids);
  return { inputIds, labels: Int32Array.from(ids) };
}
