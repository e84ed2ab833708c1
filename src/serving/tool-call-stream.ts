// Streaming a reply that may hold tool calls: text before a call streams as content; from the
// first sign of a call on (its marker, or a partial marker at the end of the text) the text is
// held, and at the end it is parsed: calls go out as `delta.tool_calls`, or, when nothing parses,
// the held text goes out as content. Trailing whitespace is held too, so content never ends in
// the newline a template writes before its first call.

import {
  callMarkers,
  callStart,
  type ParsedReply,
  parseToolCalls,
  type ToolCallSyntax,
} from "./tool-call-format.js";

const EMPTY_THINK = /^\s*<think>\s*<\/think>\s*/;

/** `text` could still turn out to be a leading empty think block. */
function mayBecomeEmptyThink(text: string): boolean {
  const rest = text.trimStart();
  if (rest.length === 0) return false;
  if ("<think>".startsWith(rest)) return true;
  if (!rest.startsWith("<think>")) return false;
  const inner = rest.slice("<think>".length).trimStart();
  return "</think>".startsWith(inner) || EMPTY_THINK.test(text);
}

export class ToolCallStreamSplitter {
  private text = "";
  private sent = 0;
  private inCall = false;
  /** length of a leading empty think block, never sent */
  private skipped = 0;

  constructor(
    private readonly syntax: ToolCallSyntax,
    /** text already in the reply before generation (a forced call's start) */
    prefix = "",
  ) {
    this.text = prefix;
    this.inCall = prefix.length > 0;
  }

  /** Add generated text; returns content that can be sent now. */
  push(piece: string): string {
    this.text += piece;
    if (this.inCall) return "";
    if (this.sent === 0 && this.skipped === 0) {
      // an empty think block (Qwen3 without thinking) is not content
      const empty = EMPTY_THINK.exec(this.text);
      if (empty && empty[0].length < this.text.length) this.sent = this.skipped = empty[0].length;
      else if (mayBecomeEmptyThink(this.text)) return "";
    }
    const at = callStart(this.syntax, this.text);
    if (at >= 0) {
      this.inCall = true;
      return this.release(this.text.slice(0, at).trimEnd().length);
    }
    let hold = this.text.length;
    for (const marker of callMarkers(this.syntax))
      for (let k = Math.min(marker.length - 1, this.text.length); k > 0; k--)
        if (this.text.endsWith(marker.slice(0, k))) {
          hold = Math.min(hold, this.text.length - k);
          break;
        }
    // whitespace before a possible call is held too (content is trimmed before calls)
    hold = this.text.slice(0, hold).trimEnd().length;
    if (this.syntax === "llama" && this.text.trim().length === 0) hold = this.sent;
    return this.release(hold);
  }

  private release(upTo: number): string {
    if (upTo <= this.sent) return "";
    const out = this.text.slice(this.sent, upTo);
    this.sent = upTo;
    return out;
  }

  /** At the end: the calls (with any content not yet sent), or the rest as content. */
  finish(): { calls: ParsedReply["calls"]; content: string } {
    const parsed = parseToolCalls(this.syntax, this.text);
    if (parsed) {
      const content = parsed.content ?? "";
      // the part of the (trimmed) content the client has not seen yet
      const alreadySent = this.text.slice(this.skipped, this.sent).trim();
      return {
        calls: parsed.calls,
        content: content.startsWith(alreadySent) ? content.slice(alreadySent.length) : "",
      };
    }
    return { calls: [], content: this.release(this.text.length) };
  }
}
