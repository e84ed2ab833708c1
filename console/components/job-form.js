// The create-job form for a training file. Empty number fields mean `auto`; beside each, what
// the preflight resolved it to (when the server has the preflight endpoint).
import { html } from "../lib/html.js";

export const EMPTY_FORM = {
  model: "",
  method: "supervised",
  suffix: "",
  validation_file: "",
  n_epochs: "",
  batch_size: "",
  learning_rate_multiplier: "",
  beta: "",
  lora_rank: "",
  lora_alpha: "",
  max_seq_length: "",
  warmup_ratio: "",
  lr_scheduler: "",
  full_finetune: false,
  seed: "",
  metadata: "",
};

const NUMBER_FIELDS = [
  ["n_epochs", "Epochs", "1"],
  ["batch_size", "Batch size", "1"],
  ["learning_rate_multiplier", "Learning rate multiplier", "any"],
];
const ADVANCED_FIELDS = [
  ["lora_rank", "LoRA rank", "1"],
  ["lora_alpha", "LoRA alpha", "any"],
  ["max_seq_length", "Max sequence length", "1"],
  ["warmup_ratio", "Warm-up ratio", "any"],
];

/** The POST /v1/fine_tuning/jobs body of a form (empty fields left out: the server's defaults/auto). */
export function jobRequestBody(form, trainingFile) {
  const hp = {};
  const num = (k) => {
    if (form[k] !== "" && form[k] != null) hp[k] = Number(form[k]);
  };
  for (const [k] of [...NUMBER_FIELDS, ...ADVANCED_FIELDS]) num(k);
  if (form.method === "dpo") num("beta");
  if (form.lr_scheduler) hp.lr_scheduler = form.lr_scheduler;
  if (form.full_finetune) hp.full_finetune = true;
  const body = {
    model: form.model,
    training_file: trainingFile,
    method: { type: form.method, [form.method]: { hyperparameters: hp } },
  };
  if (form.suffix.trim()) body.suffix = form.suffix.trim();
  if (form.validation_file) body.validation_file = form.validation_file;
  if (form.seed !== "") body.seed = Number(form.seed);
  const metadata = Object.fromEntries(
    form.metadata
      .split(",")
      .map((p) => p.trim())
      .filter(Boolean)
      .map((p) => [
        p.slice(0, p.indexOf("=") < 0 ? p.length : p.indexOf("=")).trim(),
        p.includes("=") ? p.slice(p.indexOf("=") + 1).trim() : "",
      ]),
  );
  if (Object.keys(metadata).length) body.metadata = metadata;
  return body;
}

function Resolved({ preflight, method, name }) {
  const v = preflight?.method?.[method]?.hyperparameters?.[name];
  if (v === undefined) return null;
  const rule = preflight.auto_rules?.[name];
  return html`<span class="resolved small" title=${rule ?? ""}>→ ${String(v)}</span>`;
}

export function JobForm({ form, setForm, models, validationFiles, preflight, busy, onSubmit }) {
  const set = (k) => (e) =>
    setForm({
      ...form,
      [k]: e.currentTarget.type === "checkbox" ? e.currentTarget.checked : e.currentTarget.value,
    });
  const field = ([k, label, step]) => html`
    <label>${label}
      <span class="with-hint">
        <input type="number" name=${k} min="0" step=${step} placeholder="auto" value=${form[k]} onInput=${set(k)} />
        <${Resolved} preflight=${preflight} method=${form.method} name=${k} />
      </span>
    </label>`;
  return html`
    <form class="job-form" onSubmit=${(e) => {
      e.preventDefault();
      onSubmit();
    }} aria-labelledby="job-form-title">
      <h2 id="job-form-title">Create a fine-tuning job from this file</h2>
      <div class="grid">
        <label>Model
          <select name="model" value=${form.model} onChange=${set("model")} required>
            ${models.map((m) => html`<option value=${m}>${m}</option>`)}
          </select>
        </label>
        <label>Method
          <select name="method" value=${form.method} onChange=${set("method")}>
            <option value="supervised">supervised</option>
            <option value="dpo">dpo (preference pairs)</option>
          </select>
        </label>
        <label>Suffix <input name="suffix" maxlength="64" placeholder="my-model" value=${form.suffix} onInput=${set("suffix")} /></label>
        <label>Validation file
          <select name="validation_file" value=${form.validation_file} onChange=${set("validation_file")}>
            <option value="">none</option>
            ${validationFiles.map((f) => html`<option value=${f.id}>${f.filename} (${f.id})</option>`)}
          </select>
        </label>
        ${NUMBER_FIELDS.map(field)}
        ${form.method === "dpo" ? field(["beta", "DPO beta", "any"]) : null}
      </div>
      <details>
        <summary>Advanced (LoRA, sequence length, schedule, seed, metadata)</summary>
        <div class="grid">
          ${ADVANCED_FIELDS.map(field)}
          <label>Learning-rate schedule
            <select name="lr_scheduler" value=${form.lr_scheduler} onChange=${set("lr_scheduler")}>
              <option value="">default (linear)</option><option value="linear">linear</option><option value="cosine">cosine</option><option value="constant">constant</option>
            </select>
          </label>
          <label class="check"><input type="checkbox" name="full_finetune" checked=${form.full_finetune} onChange=${set("full_finetune")} /> Full fine-tune (no LoRA)</label>
          <label>Seed <input type="number" name="seed" step="1" value=${form.seed} onInput=${set("seed")} /></label>
          <label>Metadata <input name="metadata" placeholder="team=search, run=3" value=${form.metadata} onInput=${set("metadata")} /></label>
        </div>
      </details>
      <button type="submit" disabled=${busy || !form.model}>${busy ? "Creating…" : "Create job"}</button>
    </form>
  `;
}
