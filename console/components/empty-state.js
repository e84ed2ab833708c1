// What an empty list says, and the next step to take.
import { html } from "../lib/html.js";

export function EmptyState({ title, children }) {
  return html`<div class="empty"><strong>${title}</strong><div>${children}</div></div>`;
}
