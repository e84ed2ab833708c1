// What the trainer will see of one example, as text: the token ids and labels buildDataset
// produced (after truncation), decoded in runs that share "trained" and "special", so every
// character shows whether its tokens are scored. Nothing is re-tokenized or re-rendered here.
//
// "trained" is the scored view of the labels: a label at position 0 is never scored (the logits
// at t predict t + 1, and the row builder masks a segment's first token), so it counts as
// untrained, exactly as countScoredLabels counts trained tokens.

import type { HfTokenizer } from "../hf/tokenizer.js";
import { IGNORE_INDEX } from "./batch.js";
import type { EncodedSequence } from "./encode-chat.js";

export interface MaskSegment {
  text: string;
  trained: boolean;
  tokens: number;
  /** a special token (each special token is its own segment) */
  special: boolean;
}

/** Whether the label at `i` will be scored. */
export function isScored(labels: ArrayLike<number>, i: number): boolean {
  return i >= 1 && labels[i] !== IGNORE_INDEX;
}

/**
 * Segments in token order. Each segment's text is the growth of the decoded prefix, so the texts
 * concatenate to decode(all ids) even where a tokenizer's decoder looks at neighbouring tokens
 * (a leading-space strip at the start); a boundary inside a multi-byte character falls back to
 * decoding the run alone.
 */
export function maskSegments(sequence: EncodedSequence, tokenizer: HfTokenizer): MaskSegment[] {
  const { inputIds: ids, labels } = sequence;
  const bounds: { start: number; end: number; trained: boolean; special: boolean }[] = [];
  for (let i = 0; i < ids.length; i++) {
    const trained = isScored(labels, i);
    const special = tokenizer.isSpecialId(ids[i]);
    const last = bounds[bounds.length - 1];
    if (last && !special && !last.special && last.trained === trained) last.end = i + 1;
    else bounds.push({ start: i, end: i + 1, trained, special });
  }
  const segments: MaskSegment[] = [];
  let before = "";
  for (const b of bounds) {
    const upTo = tokenizer.decode(ids.subarray(0, b.end));
    const text = upTo.startsWith(before)
      ? upTo.slice(before.length)
      : tokenizer.decode(ids.subarray(b.start, b.end));
    before = upTo;
    segments.push({ text, trained: b.trained, tokens: b.end - b.start, special: b.special });
  }
  return segments;
}
