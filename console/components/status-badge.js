// A job status as a coloured label (colour is never the only signal: the word is the label).
import { html } from "../lib/html.js";

export function StatusBadge({ status }) {
  return html`<span class=${`badge status-${status}`} data-status=${status}>${status.replace("_", " ")}</span>`;
}
