// A labelled progress bar (a native <progress>, so screen readers announce it).
import { html } from "../lib/html.js";

export function ProgressBar({ value, max, label }) {
  const pct = max > 0 ? Math.floor((100 * value) / max) : 0;
  return html`
    <div class="progress">
      <progress value=${value} max=${max || 1} aria-label=${label}></progress>
      <span class="small">${label}: ${pct}%</span>
    </div>
  `;
}
