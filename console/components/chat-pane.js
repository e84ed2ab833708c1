// One side of the playground: a model picker and its transcript. The replies stream in; the
// pane's `data-state` (idle/streaming/done/error) and `data-chunks` say how far it got.
import { formatNumber } from "../lib/format.js";
import { html } from "../lib/html.js";
import { ErrorBox } from "./error-box.js";
import { TokenText } from "./token-text.js";

export function ChatPane({ index, model, models, onModel, turns, state }) {
  const last = turns[turns.length - 1];
  return html`
    <section class="pane" data-pane=${index} data-state=${state} data-chunks=${last?.reply.chunks ?? 0} aria-label=${`Model ${index + 1}`}>
      <label class="pane-model">Model ${index + 1}
        <select value=${model} onChange=${(e) => onModel(e.currentTarget.value)} disabled=${state === "streaming"}>
          ${models.includes(model) || !model ? null : html`<option value=${model}>${model}</option>`}
          ${models.map((m) => html`<option value=${m}>${m}</option>`)}
        </select>
      </label>
      <div class="transcript" aria-live="polite">
        ${turns.length === 0 ? html`<p class="muted small">Replies from ${model || "this model"} appear here.</p>` : null}
        ${turns.map(
          (t, i) => html`<div key=${i} class="turn">
            <div class="msg user"><span class="role">you</span><span>${t.user}</span></div>
            <div class="msg assistant">
              <span class="role">${model.length > 40 ? `…${model.slice(-38)}` : model}</span>
              <${TokenText} text=${t.reply.text} tokens=${t.reply.tokens} />
              ${t.reply.streaming ? html`<span class="cursor" aria-hidden="true">▍</span>` : null}
              ${t.reply.error ? html`<${ErrorBox} error=${t.reply.error} />` : null}
              ${
                t.reply.usage
                  ? html`<div class="small muted">${formatNumber(t.reply.usage.completion_tokens)} tokens · ${t.reply.finishReason ?? ""}${t.reply.seconds ? ` · ${t.reply.seconds.toFixed(1)} s` : ""}</div>`
                  : null
              }
            </div>
          </div>`,
        )}
      </div>
    </section>
  `;
}
