// Token ids → text deltas, one token at a time, such that the deltas concatenate to the decode
// of all ids. Byte-level BPE tokens can end in the middle of a UTF-8 character, and some decoders
// change a token's text depending on its neighbours (leading-space handling), so each step decodes
// a short window and holds text back while it ends in an incomplete character (U+FFFD), the way
// vLLM and text-generation-inference detokenize incrementally.

import type { HfTokenizer } from "../../worker/engine/hf/tokenizer.js";

const REPLACEMENT = "\uFFFD";

export class IncrementalDetokenizer {
  private readonly ids: number[] = [];
  /** window start: text before it has been returned */
  private prefixOffset = 0;
  /** ids [prefixOffset, readOffset) decode to text already returned */
  private readOffset = 0;

  constructor(
    private readonly tokenizer: HfTokenizer,
    private readonly skipSpecialTokens = true,
  ) {}

  private decode(from: number, to: number): string {
    return this.tokenizer.decode(this.ids.slice(from, to), { skipSpecialTokens: this.skipSpecialTokens });
  }

  /** The new text this token completes ("" while a character is still incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const before = this.decode(this.prefixOffset, this.readOffset);
    const now = this.decode(this.prefixOffset, this.ids.length);
    if (now.length > before.length && !now.endsWith(REPLACEMENT) && now.startsWith(before)) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return now.slice(before.length);
    }
    return "";
  }

  /** Whatever is still held back (an incomplete character decodes as U+FFFD, as HF does). */
  flush(): string {
    const before = this.decode(this.prefixOffset, this.readOffset);
    const now = this.decode(this.prefixOffset, this.ids.length);
    this.prefixOffset = this.readOffset = this.ids.length;
    return now.startsWith(before) ? now.slice(before.length) : "";
  }
}
