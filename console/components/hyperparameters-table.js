// The job's resolved hyperparameters (the worker writes `auto` values back once it has read
// the file), from `method.<type>.hyperparameters`.
import { html } from "../lib/html.js";

export function HyperparametersTable({ job }) {
  const type = job.method?.type ?? "supervised";
  const hp = job.method?.[type]?.hyperparameters ?? job.hyperparameters ?? {};
  const rows = Object.entries(hp);
  return html`
    <section class="panel" aria-labelledby="hp-title">
      <h2 id="hp-title">Hyperparameters <span class="muted small">${type}</span></h2>
      <dl class="kv" id="hyperparameters">
        ${rows.map(
          ([k, v]) =>
            html`<dt>${k}</dt><dd>${Array.isArray(v) ? v.join(", ") : typeof v === "number" ? String(Number(v.toPrecision(6))) : String(v)}</dd>`,
        )}
        <dt>seed</dt><dd>${job.seed ?? "—"}</dd>
      </dl>
    </section>
  `;
}
