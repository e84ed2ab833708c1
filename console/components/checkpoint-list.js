// A job's checkpoints (the API keeps the last three), each usable as a model: chat with it in
// the playground next to its base model, or download its adapter.
import { download } from "../lib/api.js";
import { formatNumber, formatTime } from "../lib/format.js";
import { html } from "../lib/html.js";
import { href } from "../lib/router.js";

export function CheckpointList({ job, checkpoints, onError }) {
  return html`
    <section class="panel" aria-labelledby="ckpt-title">
      <h2 id="ckpt-title">Checkpoints</h2>
      ${
        checkpoints.length === 0
          ? html`<p class="muted">No checkpoint yet: one is made at the end of every epoch.</p>`
          : html`
          <ul class="checkpoints">
            ${checkpoints.map(
              (c) => html`
                <li key=${c.id} data-checkpoint=${c.fine_tuned_model_checkpoint}>
                  <div>
                    <strong>step ${c.step_number}</strong>
                    <span class="muted small"> · ${formatTime(c.created_at)}</span>
                    <div class="small">
                      ${Object.entries(c.metrics ?? {})
                        .filter(([k]) => k !== "step")
                        .map(([k, v]) => html`<span class="metric">${k} ${formatNumber(v)}</span>`)}
                    </div>
                    <code class="small wrap">${c.fine_tuned_model_checkpoint}</code>
                  </div>
                  <div class="actions">
                    <a class="button secondary" href=${href("playground", { a: job.model, b: c.fine_tuned_model_checkpoint })}>Chat with this checkpoint</a>
                    <button type="button" class="secondary"
                      onClick=${() => download(`/fine_tuning/jobs/${job.id}/checkpoints/${c.id}/adapter`, `${job.id}-step-${c.step_number}.tar`).catch(onError)}>
                      Download
                    </button>
                  </div>
                </li>
              `,
            )}
          </ul>
        `
      }
    </section>
  `;
}
