// Choose a file and a purpose, then upload with a progress bar (one POST for small files, the
// Uploads API in parts for large ones). Resolves through onUploaded(file object).
import { useRef, useState } from "preact/hooks";
import { formatBytes } from "../lib/format.js";
import { html } from "../lib/html.js";
import { uploadFile } from "../lib/upload.js";
import { ErrorBox } from "./error-box.js";
import { ProgressBar } from "./progress-bar.js";

const PURPOSES = ["fine-tune", "batch", "assistants", "user_data", "evals", "vision"];

export function UploadForm({ onUploaded }) {
  const [file, setFile] = useState(null);
  const [purpose, setPurpose] = useState("fine-tune");
  const [progress, setProgress] = useState(null);
  const [error, setError] = useState(null);
  const controller = useRef(null);

  const submit = async (e) => {
    e.preventDefault();
    if (!file) return setError({ status: 400, message: "Choose a file to upload." });
    setError(null);
    setProgress({ sent: 0, total: file.size });
    controller.current = new AbortController();
    try {
      const uploaded = await uploadFile(file, purpose, {
        signal: controller.current.signal,
        onProgress: (sent, total) => setProgress({ sent, total }),
      });
      onUploaded(uploaded);
    } catch (err) {
      if (err.name !== "AbortError") setError(err);
    } finally {
      setProgress(null);
      controller.current = null;
    }
  };

  return html`
    <form class="panel upload" onSubmit=${submit} aria-labelledby="upload-title">
      <h2 id="upload-title">Upload a file</h2>
      <div class="row">
        <label>File <input type="file" name="file" accept=".jsonl,.json,.txt,.csv,application/jsonl"
          onChange=${(e) => setFile(e.currentTarget.files[0] ?? null)} /></label>
        <label>Purpose
          <select name="purpose" value=${purpose} onChange=${(e) => setPurpose(e.currentTarget.value)}>
            ${PURPOSES.map((p) => html`<option value=${p}>${p}</option>`)}
          </select>
        </label>
        <button type="submit" disabled=${progress !== null}>Upload</button>
        ${progress ? html`<button type="button" class="secondary" onClick=${() => controller.current?.abort()}>Stop</button>` : null}
      </div>
      <p class="small muted">
        Fine-tune files are JSONL: chat (<code>{"messages":[…]}</code>), preference, <code>{"prompt","completion"}</code> or <code>{"text"}</code> lines.
        ${file ? html` Selected: ${file.name}, ${formatBytes(file.size)}.` : null}
      </p>
      ${progress ? html`<${ProgressBar} value=${progress.sent} max=${progress.total} label=${`Uploading ${formatBytes(progress.sent)} of ${formatBytes(progress.total)}`} />` : null}
      <${ErrorBox} error=${error} />
    </form>
  `;
}
