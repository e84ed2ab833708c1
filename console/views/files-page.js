// Files: upload (with progress) and the project's files, with the validation summary of
// fine-tune files at a glance.
import { EmptyState } from "../components/empty-state.js";
import { ErrorBox } from "../components/error-box.js";
import { UploadForm } from "../components/upload-form.js";
import { listAll } from "../lib/api.js";
import { formatBytes, formatTime } from "../lib/format.js";
import { html } from "../lib/html.js";
import { href, navigate } from "../lib/router.js";
import { useApi } from "../lib/use-api.js";

function ValidationCell({ file }) {
  const v = file.validation;
  if (!v) return html`<span class="muted">—</span>`;
  if (v.invalid_examples > 0)
    return html`<span class="bad">${v.invalid_examples} invalid of ${v.examples}</span>`;
  return html`<span class="good">${v.examples} ${v.format ?? ""} examples</span>`;
}

export function FilesPage() {
  const files = useApi((signal) => listAll("/files?order=desc", { limit: 1000, signal }), []);
  return html`
    <section>
      <div class="page-head"><h1>Files</h1></div>
      <${UploadForm} onUploaded=${(f) => navigate(href("files", f.id))} />
      <${ErrorBox} error=${files.error} onRetry=${files.reload} />
      ${
        files.data === null
          ? files.error
            ? null
            : html`<p class="muted">Loading files…</p>`
          : files.data.length === 0
            ? html`<${EmptyState} title="No files yet.">Upload a JSONL training file above to start.</${EmptyState}>`
            : html`
              <div class="table-wrap">
                <table>
                  <thead><tr><th>File</th><th>Purpose</th><th>Size</th><th>Created</th><th>Validation</th></tr></thead>
                  <tbody>
                    ${files.data.map(
                      (f) => html`<tr data-file=${f.id}>
                        <td><a href=${href("files", f.id)}>${f.filename}</a><div class="small muted"><code>${f.id}</code></div></td>
                        <td>${f.purpose}</td>
                        <td>${formatBytes(f.bytes)}</td>
                        <td>${formatTime(f.created_at)}</td>
                        <td><${ValidationCell} file=${f} /></td>
                      </tr>`,
                    )}
                  </tbody>
                </table>
              </div>
            `
      }
    </section>
  `;
}
