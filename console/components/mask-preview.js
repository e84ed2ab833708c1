// The preflight's view of the data: each previewed example as the model sees it, trained
// characters highlighted and special tokens marked, with the warnings, token counts and the
// estimates of steps, time and memory.
import { formatBytes, formatDuration, formatNumber } from "../lib/format.js";
import { html } from "../lib/html.js";
import { showLine } from "./file-lines.js";

function Segment({ s }) {
  const cls = `seg${s.trained ? " trained" : ""}${s.special ? " special" : ""}`;
  const title = `${s.tokens} token${s.tokens === 1 ? "" : "s"}${s.trained ? ", trained" : ", not trained"}${s.special ? ", special token" : ""}`;
  return html`<span class=${cls} title=${title}>${s.text}</span>`;
}

export function MaskPreview({ preflight }) {
  const t = preflight.data?.training;
  const est = preflight.training;
  return html`
    <div class="mask-preview" id="mask-preview">
      <p class="legend small">
        <span class="seg trained">trained</span> <span class="seg">not trained</span> <span class="seg special">special token</span>
      </p>
      ${
        (preflight.warnings ?? []).length
          ? html`<ul class="warnings" aria-label="Warnings">
            ${preflight.warnings.map((w) => html`<li><strong>${w.code}</strong>${w.line ? html` (<button type="button" class="link" onClick=${() => showLine(w.line)}>line ${w.line}</button>)` : null}: ${w.message}</li>`)}
          </ul>`
          : null
      }
      ${(preflight.preview ?? []).map(
        (ex) => html`<figure class="example">
          <figcaption class="small muted">
            line ${ex.line}${ex.kept === false ? html` · <span class="bad">dropped: nothing trainable within max_seq_length</span>` : null}${ex.truncated ? " · truncated to max_seq_length" : ""}
          </figcaption>
          <pre>${ex.segments.map((s) => html`<${Segment} s=${s} />`)}</pre>
        </figure>`,
      )}
      ${
        (t?.problems ?? []).length
          ? html`<ul class="problems small" aria-label="Problems">
            ${t.problems.map((p) => html`<li>line ${p.line} <code>${p.code}</code> ${p.message}</li>`)}
          </ul>`
          : null
      }
      <dl class="kv">
        ${
          t
            ? html`
            <dt>Examples</dt><dd>${t.examples_kept} kept of ${t.examples_read}${t.examples_dropped ? `, ${t.examples_dropped} dropped` : ""}${t.examples_truncated ? `, ${t.examples_truncated} truncated` : ""}</dd>
            <dt>Tokens</dt><dd>${formatNumber(t.tokens?.total)} total, ${formatNumber(t.tokens?.trained)} trained${t.tokens?.per_example ? `; per example ${t.tokens.per_example.min}–${t.tokens.per_example.max} (median ${t.tokens.per_example.median})` : ""}</dd>
            ${t.packing_efficiency != null ? html`<dt>Packing</dt><dd>${t.rows != null ? `${t.rows} row${t.rows === 1 ? "" : "s"}, ` : ""}${(100 * t.packing_efficiency).toFixed(0)}% of token slots used</dd>` : null}
          `
            : null
        }
        ${
          est
            ? html`
            <dt>Steps</dt><dd>${est.total_steps} (${est.steps_per_epoch} per epoch)</dd>
            <dt>Estimated time</dt><dd>${formatDuration(est.estimated_duration_seconds)}${est.duration_source ? html` <span class="muted small">(${est.duration_source})</span>` : null}</dd>
            ${
              est.memory
                ? html`<dt>Peak memory</dt><dd class=${est.memory.fits ? "" : "bad"}>${formatBytes(est.memory.estimated_peak_bytes)} of ${formatBytes(est.memory.budget_bytes)} (${est.memory.backend})${est.memory.fits ? "" : " — does not fit"}</dd>`
                : null
            }
          `
            : null
        }
      </dl>
    </div>
  `;
}
