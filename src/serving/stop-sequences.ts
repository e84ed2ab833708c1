// OpenAI's `stop`: up to 4 strings; the text ends right before the first one that appears, which
// is not part of the result. While streaming, text that could be the start of a stop string is
// held back until it is known not to be one, so no part of a stop string ever reaches the client.

export class StopSequenceFilter {
  private text = "";
  /** characters of `text` already released */
  private released = 0;
  private readonly longest: number;
  stopped = false;

  constructor(private readonly stops: readonly string[]) {
    this.longest = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** Add generated text; returns what can be released now. After a stop string, `stopped` is set. */
  push(delta: string): string {
    if (this.stopped || delta.length === 0) return "";
    const searchFrom = Math.max(0, this.text.length - this.longest + 1);
    this.text += delta;
    let cut = -1;
    for (const stop of this.stops) {
      const at = this.text.indexOf(stop, searchFrom);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      this.text = this.text.slice(0, cut);
      return this.take(this.text.length);
    }
    return this.take(this.text.length - this.heldBack());
  }

  /** The rest (a held-back partial match that never completed). */
  flush(): string {
    return this.take(this.text.length);
  }

  /** Length of the longest suffix of `text` that is a proper prefix of a stop string. */
  private heldBack(): number {
    const max = Math.min(this.longest - 1, this.text.length - this.released);
    for (let k = max; k > 0; k--) {
      const tail = this.text.slice(this.text.length - k);
      if (this.stops.some((s) => s.startsWith(tail))) return k;
    }
    return 0;
  }

  private take(end: number): string {
    if (end <= this.released) return "";
    const out = this.text.slice(this.released, end);
    this.released = end;
    return out;
  }
}
