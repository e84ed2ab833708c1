// Text a user wrote that happens to spell a special token ("<|im_end|>") must stay text. We render
// the chat template with such text replaced by private-use placeholders, so in the rendered string
// every real special token came from the template itself; when a stretch of plain text is tokenized,
// the placeholders are turned back into the original characters and encoded with special-token
// parsing off. Placeholders are `\uE000<base-36 index>\uE001`; a literal \uE000 in the input is
// escaped too, so unescape(escape(x)) === x for every string.

const OPEN = "\uE000";
const CLOSE = "\uE001";

export interface SpecialTextEscaper {
  /** `value` with every string in it (object keys included) escaped; the same object when nothing changed */
  escapeDeep<T>(value: T): T;
  escape(text: string): string;
  unescape(text: string): string;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function createSpecialTextEscaper(specialTokens: Iterable<string>): SpecialTextEscaper {
  const table = [...new Set([...specialTokens].filter((t) => t.length > 0))].sort(
    (a, b) => b.length - a.length,
  );
  table.push(OPEN);
  const indexOf = new Map(table.map((t, i) => [t, i]));
  const find = new RegExp(table.map(escapeRegExp).join("|"), "g");
  const placeholder = /\uE000([0-9a-z]+)\uE001/g;

  const escapeText = (text: string): string =>
    text.replace(find, (m) => `${OPEN}${indexOf.get(m)!.toString(36)}${CLOSE}`);

  const unescapeText = (text: string): string =>
    text.indexOf(OPEN) < 0
      ? text
      : text.replace(placeholder, (_, k: string) => table[Number.parseInt(k, 36)]);

  const escapeDeep = <T>(value: T): T => {
    if (typeof value === "string") return escapeText(value) as T;
    if (Array.isArray(value)) {
      let changed = false;
      const out = value.map((v) => {
        const e = escapeDeep(v);
        if (e !== v) changed = true;
        return e;
      });
      return (changed ? out : value) as T;
    }
    if (value && typeof value === "object") {
      let changed = false;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const ek = escapeText(k);
        const ev = escapeDeep(v);
        if (ek !== k || ev !== v) changed = true;
        out[ek] = ev;
      }
      return (changed ? out : value) as T;
    }
    return value;
  };

  return { escape: escapeText, unescape: unescapeText, escapeDeep };
}
