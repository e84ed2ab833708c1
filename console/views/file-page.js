// One file: its validation summary with per-line problems linked to the lines, and for a
// fine-tune file the mask preview and estimates (the preflight endpoint, when the server has
// it) and the form that creates a job from it.
import { useEffect, useState } from "preact/hooks";
import { ErrorBox } from "../components/error-box.js";
import { FileLines, showLine } from "../components/file-lines.js";
import { EMPTY_FORM, JobForm, jobRequestBody } from "../components/job-form.js";
import { MaskPreview } from "../components/mask-preview.js";
import { api, apiFetch, apiPaths, download, listAll } from "../lib/api.js";
import { formatBytes, formatTime } from "../lib/format.js";
import { html } from "../lib/html.js";
import { href, navigate } from "../lib/router.js";
import { useApi } from "../lib/use-api.js";
import { NotFound } from "./not-found.js";

const MAX_SHOWN_BYTES = 2 * 1024 * 1024;
const PREFLIGHT_DEBOUNCE_MS = 500;

function ValidationSummary({ file }) {
  const v = file.validation;
  if (!v)
    return html`<p class="muted">No validation summary (only fine-tune files are checked line by line).</p>`;
  return html`
    <div id="validation" class=${v.invalid_examples > 0 ? "validation bad" : "validation good"}>
      <p>
        <strong>${v.invalid_examples > 0 ? `${v.invalid_examples} invalid example${v.invalid_examples === 1 ? "" : "s"}` : "Every example is valid"}</strong>${" — "}${v.examples} example${v.examples === 1 ? "" : "s"}, format <code>${v.format ?? "unknown"}</code>, ${v.valid_examples} valid.
      </p>
      ${
        v.errors.length
          ? html`<ul class="problems">
            ${v.errors.map(
              (e) =>
                html`<li><button type="button" class="link" onClick=${() => showLine(e.line)}>line ${e.line}</button> <code>${e.code}</code> ${e.message}</li>`,
            )}
          </ul>
          ${v.invalid_examples > v.errors.length ? html`<p class="small muted">The first ${v.errors.length} problems are listed.</p>` : null}`
          : null
      }
    </div>
  `;
}

function usePreflight(enabled, body) {
  const [state, setState] = useState({ result: null, error: null, loading: false });
  const key = JSON.stringify(body);
  useEffect(() => {
    if (!enabled || !body.model) return;
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    const t = setTimeout(() => {
      api("/fine_tuning/jobs/preflight", {
        method: "POST",
        body: { ...body, preview_examples: 5 },
        signal: controller.signal,
      }).then(
        (result) => setState({ result, error: null, loading: false }),
        (error) => !controller.signal.aborted && setState({ result: null, error, loading: false }),
      );
    }, PREFLIGHT_DEBOUNCE_MS);
    return () => {
      clearTimeout(t);
      controller.abort();
    };
  }, [enabled, key]);
  return state;
}

export function FilePage({ id }) {
  const loaded = useApi(
    async (signal) => {
      const file = await api(`/files/${encodeURIComponent(id)}`, { signal });
      const [paths, models, files, text] = await Promise.all([
        apiPaths(),
        file.purpose === "fine-tune" ? api("/models", { signal }).then((r) => r.data.map((m) => m.id)) : [],
        file.purpose === "fine-tune" ? listAll("/files?purpose=fine-tune", { limit: 1000, signal }) : [],
        file.bytes <= MAX_SHOWN_BYTES && file.validation
          ? apiFetch(`/files/${encodeURIComponent(id)}/content`, { signal }).then((r) => r.text())
          : null,
      ]);
      return { file, hasPreflight: paths.has("/fine_tuning/jobs/preflight"), models, files, text };
    },
    [id],
  );
  const [form, setForm] = useState(EMPTY_FORM);
  const [creating, setCreating] = useState(false);
  const [createError, setCreateError] = useState(null);
  useEffect(() => {
    const d = loaded.data;
    if (!d || form.model) return;
    const base = d.models.filter((m) => !m.startsWith("ft:"));
    setForm({
      ...form,
      model: base[0] ?? d.models[0] ?? "",
      method: d.file.validation?.format === "preference" ? "dpo" : "supervised",
    });
  }, [loaded.data]);
  const d = loaded.data;
  const body = d ? jobRequestBody(form, id) : {};
  const preflight = usePreflight(Boolean(d?.hasPreflight && d.file.purpose === "fine-tune"), body);

  if (loaded.error?.status === 404) return html`<${NotFound} what=${`file ${id} in this project`} />`;
  if (!d)
    return html`<section><h1><code>${id}</code></h1>${loaded.error ? html`<${ErrorBox} error=${loaded.error} onRetry=${loaded.reload} />` : html`<p class="muted">Loading…</p>`}</section>`;

  const { file } = d;
  const create = async () => {
    setCreating(true);
    setCreateError(null);
    try {
      const job = await api("/fine_tuning/jobs", { method: "POST", body });
      navigate(href("jobs", job.id));
    } catch (err) {
      setCreateError(err);
      setCreating(false);
    }
  };
  const tunable = d.models.filter((m) => !m.includes(":ckpt-step-"));
  return html`
    <section class="file-page" data-file=${file.id}>
      <p class="crumbs"><a href="#/files">Files</a> / <code>${file.id}</code></p>
      <div class="page-head">
        <h1>${file.filename}</h1>
        <div class="actions">
          <button type="button" class="secondary" onClick=${() => download(`/files/${file.id}/content`, file.filename).catch(setCreateError)}>Download</button>
        </div>
      </div>
      <dl class="kv summary">
        <dt>Id</dt><dd><code>${file.id}</code></dd>
        <dt>Purpose</dt><dd>${file.purpose}</dd>
        <dt>Size</dt><dd>${formatBytes(file.bytes)}</dd>
        <dt>Created</dt><dd>${formatTime(file.created_at)}</dd>
        <dt>Status</dt><dd>${file.status}</dd>
      </dl>
      <section class="panel" aria-labelledby="validation-title">
        <h2 id="validation-title">Validation</h2>
        <${ValidationSummary} file=${file} />
      </section>
      ${
        file.purpose === "fine-tune"
          ? html`
          <section class="panel" aria-labelledby="preview-title">
            <h2 id="preview-title">What the model is trained on ${preflight.loading ? html`<span class="muted small">checking…</span>` : null}</h2>
            ${
              !d.hasPreflight
                ? html`<p class="muted small" id="preview-unavailable">Preview unavailable: this server has no preflight endpoint.</p>`
                : preflight.error
                  ? html`<${ErrorBox} error=${preflight.error} />`
                  : preflight.result
                    ? html`<${MaskPreview} preflight=${preflight.result} />`
                    : html`<p class="muted">Loading the preview…</p>`
            }
          </section>
          <section class="panel">
            <${JobForm} form=${form} setForm=${setForm} models=${tunable}
              validationFiles=${d.files.filter((f) => f.id !== file.id)}
              preflight=${preflight.result} busy=${creating} onSubmit=${create} />
            <${ErrorBox} error=${createError} />
          </section>
        `
          : null
      }
      ${
        d.text !== null
          ? html`<section class="panel" aria-labelledby="lines-title"><h2 id="lines-title">Lines</h2><${FileLines} text=${d.text} errors=${file.validation?.errors ?? []} /></section>`
          : null
      }
    </section>
  `;
}
