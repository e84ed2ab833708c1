// Constrained decoding toward one of a few fixed strings: while the reply has not yet written one
// of `alternatives` in full, only tokens whose bytes keep it a prefix of some alternative may be
// chosen; afterwards nothing is masked. tool_choice "required" uses it so the reply names one of
// the request's functions (e.g. `get_weather", "arguments": `).

export function literalChoiceConstraint(
  alternatives: readonly string[],
  tokenBytes: readonly Uint8Array[],
): (logits: Float32Array, generated: readonly number[]) => void {
  const targets = alternatives.map((a) => new Uint8Array(Buffer.from(a, "utf8")));
  return (logits, generated) => {
    const written: number[] = [];
    for (const id of generated) for (const b of tokenBytes[id] ?? []) written.push(b);
    const live = targets.filter((t) => written.length <= t.length && written.every((b, i) => t[i] === b));
    if (live.length === 0 || live.some((t) => t.length === written.length)) return;
    const at = written.length;
    for (let id = 0; id < logits.length; id++) {
      const bytes = tokenBytes[id];
      const fits =
        bytes !== undefined &&
        bytes.length > 0 &&
        live.some((t) => {
          if (at + bytes.length > t.length) return false;
          for (let k = 0; k < bytes.length; k++) if (t[at + k] !== bytes[k]) return false;
          return true;
        });
      if (!fits) logits[id] = Number.NEGATIVE_INFINITY;
    }
  };
}
