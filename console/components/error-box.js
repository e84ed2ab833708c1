// How an API failure reads: what happened, in words for each kind (not found, refused, server
// down), with the server's message and request id for a bug report.
import { html } from "../lib/html.js";

function headline(error) {
  if (error.status === 404) return "Not found";
  if (error.status === 0) return "The server cannot be reached";
  if (error.status >= 500) return "Server error";
  if (error.status === 401) return "The key was refused";
  if (error.status === 413) return "Too large";
  return "Request refused";
}

export function ErrorBox({ error, onRetry }) {
  if (!error) return null;
  return html`
    <div class="error-box" role="alert">
      <strong>${headline(error)}</strong>
      <span class="error-message">${error.message}</span>
      ${error.param ? html`<span class="muted"> (parameter <code>${error.param}</code>)</span>` : null}
      ${error.requestId ? html`<div class="muted small">request id <code>${error.requestId}</code></div>` : null}
      ${onRetry ? html`<button type="button" class="secondary" onClick=${onRetry}>Try again</button>` : null}
    </div>
  `;
}
