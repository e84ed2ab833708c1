// Models: the base models, and under each the tuned models made from it (with their job and
// checkpoints). Tuned models can be deleted; any model opens in the playground.
import { useState } from "preact/hooks";
import { EmptyState } from "../components/empty-state.js";
import { ErrorBox } from "../components/error-box.js";
import { api } from "../lib/api.js";
import { formatTime } from "../lib/format.js";
import { html } from "../lib/html.js";
import { lineage } from "../lib/model-lineage.js";
import { href } from "../lib/router.js";
import { useApi } from "../lib/use-api.js";

export function ModelsPage() {
  const models = useApi((signal) => api("/models", { signal }).then((r) => r.data), []);
  const [error, setError] = useState(null);
  const remove = async (id) => {
    if (!confirm(`Delete ${id}? Its checkpoints go with it.`)) return;
    try {
      await api(`/models/${encodeURIComponent(id)}`, { method: "DELETE" });
      models.reload();
    } catch (err) {
      setError(err);
    }
  };
  const tree = models.data ? lineage(models.data) : [];
  return html`
    <section>
      <div class="page-head"><h1>Models</h1></div>
      <${ErrorBox} error=${models.error ?? error} onRetry=${models.error ? models.reload : null} />
      ${
        models.data === null
          ? models.error
            ? null
            : html`<p class="muted">Loading models…</p>`
          : tree.length === 0
            ? html`<${EmptyState} title="No models.">Put a Hugging Face model folder under <code>MODELS_DIR</code> and restart the server.</${EmptyState}>`
            : html`<ul class="lineage">
              ${tree.map(
                (b) => html`<li class="base" data-model=${b.base}>
                  <div class="model-row">
                    <strong>${b.base}</strong> <span class="badge">base</span>
                    ${b.known ? html`<a class="button secondary" href=${href("playground", { a: b.base })}>Chat</a>` : html`<span class="muted small">not under MODELS_DIR</span>`}
                  </div>
                  ${
                    b.tuned.length === 0
                      ? html`<p class="small muted">No tuned model yet.</p>`
                      : html`<ul>
                        ${b.tuned.map(
                          (t) => html`<li data-job=${t.job}>
                            <div class="model-row">
                              <span>job <a href=${href("jobs", t.job)}><code>${t.job}</code></a>${t.suffix ? html` · ${t.suffix}` : null}</span>
                            </div>
                            ${
                              t.model
                                ? html`<div class="model-row" data-model=${t.model.id}>
                                  <code class="wrap">${t.model.id}</code> <span class="badge">tuned</span>
                                  <span class="muted small">${formatTime(t.model.created)}</span>
                                  <a class="button secondary" href=${href("playground", { a: b.base, b: t.model.id })}>Compare with base</a>
                                  <button type="button" class="danger" onClick=${() => remove(t.model.id)}>Delete</button>
                                </div>`
                                : null
                            }
                            ${
                              t.checkpoints.length
                                ? html`<ul class="checkpoint-models">
                                  ${t.checkpoints.map(
                                    (c) => html`<li class="model-row" data-model=${c.id}>
                                      <span>checkpoint step ${c.step}</span>
                                      <a class="button secondary" href=${href("playground", { a: b.base, b: c.id })}>Chat</a>
                                    </li>`,
                                  )}
                                </ul>`
                                : null
                            }
                          </li>`,
                        )}
                      </ul>`
                  }
                </li>`,
              )}
            </ul>`
      }
    </section>
  `;
}
