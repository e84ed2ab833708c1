// The jobs list: status, model, suffix, created and progress (step/total and ETA from the
// newest metrics event and `estimated_finish`), filtered by status (here) and metadata (by the
// API's `metadata[k]=v`). Refreshes while a job is active.
import { useEffect, useState } from "preact/hooks";
import { EmptyState } from "../components/empty-state.js";
import { ErrorBox } from "../components/error-box.js";
import { StatusBadge } from "../components/status-badge.js";
import { api, listAll } from "../lib/api.js";
import { formatDuration, formatTime } from "../lib/format.js";
import { html } from "../lib/html.js";
import { href, navigate } from "../lib/router.js";
import { useApi } from "../lib/use-api.js";

const STATUSES = ["validating_files", "queued", "running", "paused", "succeeded", "failed", "cancelled"];
const ACTIVE = new Set(["validating_files", "queued", "running"]);
const REFRESH_MS = 3000;
/** with no active job the list still refreshes now and then: jobs are also created through the API */
const IDLE_REFRESH_MS = 15_000;

/** "k=v, k2=v2" → "metadata[k]=v&metadata[k2]=v2" */
export function metadataQuery(text) {
  return text
    .split(",")
    .map((pair) => pair.trim())
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf("=");
      const k = eq < 0 ? pair : pair.slice(0, eq).trim();
      const v = eq < 0 ? "" : pair.slice(eq + 1).trim();
      return `metadata[${encodeURIComponent(k)}]=${encodeURIComponent(v)}`;
    })
    .join("&");
}

async function latestProgress(job, signal) {
  if (job.status !== "running" && job.status !== "paused") return null;
  const page = await api(`/fine_tuning/jobs/${job.id}/events?limit=20`, { signal });
  const m = page.data.find((e) => e.type === "metrics" && e.data?.step != null);
  return m ? { step: m.data.step, total: m.data.total_steps } : null;
}

function Progress({ job, progress }) {
  if (job.status === "succeeded") return html`<span class="muted">done</span>`;
  if (!progress) return html`<span class="muted">—</span>`;
  const eta =
    job.estimated_finish && job.status === "running" ? job.estimated_finish - Date.now() / 1000 : null;
  return html`
    <span>
      <progress value=${progress.step} max=${progress.total || 1} aria-label="steps done"></progress>
      ${" "}${progress.step}/${progress.total}${eta != null ? html` · ETA ${formatDuration(eta)}` : null}
    </span>
  `;
}

export function JobsPage({ query }) {
  const status = query.get("status") ?? "";
  const metadata = query.get("metadata") ?? "";
  const [metadataInput, setMetadataInput] = useState(metadata);
  const jobs = useApi(
    async (signal) => {
      const mq = metadataQuery(metadata);
      const all = await listAll(`/fine_tuning/jobs${mq ? `?${mq}` : ""}`, { limit: 100, signal });
      const progress = new Map(
        await Promise.all(all.map(async (j) => [j.id, await latestProgress(j, signal).catch(() => null)])),
      );
      return { all, progress };
    },
    [metadata],
  );
  const anyActive = jobs.data?.all.some((j) => ACTIVE.has(j.status));
  useEffect(() => {
    const t = setTimeout(jobs.reload, anyActive ? REFRESH_MS : IDLE_REFRESH_MS);
    return () => clearTimeout(t);
  }, [jobs.data]);

  const shown = jobs.data ? jobs.data.all.filter((j) => !status || j.status === status) : [];
  const setFilter = (next) => navigate(href("jobs", { status, metadata, ...next }));

  return html`
    <section>
      <div class="page-head">
        <h1>Fine-tuning jobs</h1>
        <a class="button" href="#/files">New job from a file</a>
      </div>
      <form class="filters" onSubmit=${(e) => {
        e.preventDefault();
        setFilter({ metadata: metadataInput.trim() });
      }}>
        <label>Status
          <select value=${status} onChange=${(e) => setFilter({ status: e.currentTarget.value })}>
            <option value="">any</option>
            ${STATUSES.map((s) => html`<option value=${s}>${s.replace("_", " ")}</option>`)}
          </select>
        </label>
        <label>Metadata
          <input type="search" placeholder="key=value, key2=value2" value=${metadataInput}
            onInput=${(e) => setMetadataInput(e.currentTarget.value)} />
        </label>
        <button type="submit" class="secondary">Filter</button>
      </form>
      <${ErrorBox} error=${jobs.error} onRetry=${jobs.reload} />
      ${
        jobs.data === null
          ? jobs.error
            ? null
            : html`<p class="muted">Loading jobs…</p>`
          : shown.length === 0
            ? html`<${EmptyState} title=${jobs.data.all.length ? "No job matches these filters." : "No fine-tuning jobs yet."}>
                ${jobs.data.all.length ? null : html`Upload a training file on the <a href="#/files">Files</a> page, then create a job from it.`}
              </${EmptyState}>`
            : html`
              <div class="table-wrap">
                <table class="jobs">
                  <thead><tr><th>Job</th><th>Status</th><th>Model</th><th>Suffix</th><th>Created</th><th>Progress</th></tr></thead>
                  <tbody>
                    ${shown.map(
                      (j) => html`
                        <tr data-job=${j.id}>
                          <td><a href=${href("jobs", j.id)}><code>${j.id}</code></a></td>
                          <td><${StatusBadge} status=${j.status} /></td>
                          <td>${j.model}</td>
                          <td>${j.suffix ?? html`<span class="muted">—</span>`}</td>
                          <td>${formatTime(j.created_at)}</td>
                          <td><${Progress} job=${j} progress=${jobs.data.progress.get(j.id)} /></td>
                        </tr>
                      `,
                    )}
                  </tbody>
                </table>
              </div>
            `
      }
    </section>
  `;
}
