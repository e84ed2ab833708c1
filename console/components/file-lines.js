// The lines of a JSONL file with their numbers, problem lines marked; the validation errors
// link here. Large files show their first lines and the lines with problems.
import { html } from "../lib/html.js";

const HEAD_LINES = 200;
const MAX_LINE_CHARS = 2000;

export function lineElementId(line) {
  return `line-${line}`;
}

/** Scrolls to a line and moves keyboard focus there. */
export function showLine(line) {
  const el = document.getElementById(lineElementId(line));
  if (!el) return;
  el.scrollIntoView({ block: "center" });
  el.focus();
}

export function FileLines({ text, errors }) {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const bad = new Map();
  for (const e of errors) bad.set(e.line, [...(bad.get(e.line) ?? []), e.message]);
  const shown = [
    ...new Set([
      ...Array.from({ length: Math.min(HEAD_LINES, lines.length) }, (_, i) => i + 1),
      ...bad.keys(),
    ]),
  ]
    .filter((n) => n <= lines.length)
    .sort((a, b) => a - b);
  const rows = [];
  let previous = 0;
  for (const n of shown) {
    if (n > previous + 1) rows.push(html`<li class="gap" aria-hidden="true">…</li>`);
    const raw = lines[n - 1];
    rows.push(html`
      <li id=${lineElementId(n)} tabindex="-1" class=${bad.has(n) ? "bad-line" : ""} value=${n}>
        <code>${raw.length > MAX_LINE_CHARS ? `${raw.slice(0, MAX_LINE_CHARS)}…` : raw}</code>
        ${bad.has(n) ? html`<div class="line-problem">${bad.get(n).join(" · ")}</div>` : null}
      </li>
    `);
    previous = n;
  }
  return html`
    <ol class="file-lines">${rows}</ol>
    ${lines.length > shown.length ? html`<p class="small muted">${lines.length} lines; the first ${HEAD_LINES} and every line with a problem are shown.</p>` : null}
  `;
}
