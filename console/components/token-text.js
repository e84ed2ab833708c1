// A reply drawn token by token when logprobs came with it: each token is tinted by its
// probability and shows the top alternatives on hover or keyboard focus.
import { html } from "../lib/html.js";

function pct(logprob) {
  const p = Math.exp(logprob) * 100;
  return p >= 10 ? `${p.toFixed(0)}%` : `${p.toFixed(1)}%`;
}

function visible(token) {
  return JSON.stringify(token).slice(1, -1);
}

export function TokenText({ text, tokens }) {
  if (!tokens || tokens.length === 0) return html`<span class="reply-text">${text}</span>`;
  return html`<span class="reply-text tokens">
    ${tokens.map((t, i) => {
      const tip = [
        `"${visible(t.token)}" ${pct(t.logprob)}`,
        ...(t.top_logprobs ?? []).map((a) => `  ${visible(a.token)}  ${pct(a.logprob)}`),
      ].join("\n");
      return html`<span key=${i} class="tok" tabindex="0" data-tip=${tip} aria-label=${tip}
        style=${{ "--p": Math.exp(t.logprob).toFixed(3) }}>${t.token}</span>`;
    })}
  </span>`;
}
