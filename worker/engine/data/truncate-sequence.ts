// Cut an encoded example to max_seq_length (keep the first tokens, as Hugging Face's right-side
// truncation does) and say whether it is still worth training on: it is only if at least one label
// survives at a position >= 1 (the label at position 0 is never scored: logits at t predict t + 1).

import { IGNORE_INDEX } from "./batch.js";
import type { EncodedSequence } from "./encode-chat.js";

export interface TruncatedSequence {
  sequence: EncodedSequence;
  truncated: boolean;
  /** labels that will be scored (positions >= 1, not IGNORE_INDEX) */
  trainedTokens: number;
}

export function countScoredLabels(labels: ArrayLike<number>): number {
  let n = 0;
  for (let i = 1; i < labels.length; i++) if (labels[i] !== IGNORE_INDEX) n++;
  return n;
}

/** null when nothing trainable survives the cut */
export function truncateSequence(sequence: EncodedSequence, maxLength: number): TruncatedSequence | null {
  if (!(Number.isInteger(maxLength) && maxLength >= 2)) {
    throw new Error(`max_seq_length must be an integer >= 2 (got ${maxLength})`);
  }
  const truncated = sequence.inputIds.length > maxLength;
  const cut = truncated
    ? { inputIds: sequence.inputIds.slice(0, maxLength), labels: sequence.labels.slice(0, maxLength) }
    : sequence;
  const trainedTokens = countScoredLabels(cut.labels);
  return trainedTokens > 0 ? { sequence: cut, truncated, trainedTokens } : null;
}
