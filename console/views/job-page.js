// One job: status and progress, cancel/pause/resume, downloads, the live metric charts (loss,
// token accuracy, learning rate; DPO rewards when reported), hyperparameters, checkpoints and
// the live event log. History comes from the events list, then the SSE stream continues it.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { CheckpointList } from "../components/checkpoint-list.js";
import { ErrorBox } from "../components/error-box.js";
import { EventLog } from "../components/event-log.js";
import { HyperparametersTable } from "../components/hyperparameters-table.js";
import { MetricChart } from "../components/metric-chart.js";
import { ProgressBar } from "../components/progress-bar.js";
import { StatusBadge } from "../components/status-badge.js";
import { api, apiPaths, download } from "../lib/api.js";
import { formatDuration, formatNumber, formatTime } from "../lib/format.js";
import { html } from "../lib/html.js";
import { useJobEvents } from "../lib/job-events.js";
import {
  ACCURACY_SERIES,
  chartData,
  LEARNING_RATE_SERIES,
  LOSS_SERIES,
  metricsByStep,
  progressOf,
  REWARD_ACCURACY_SERIES,
  REWARD_SERIES,
} from "../lib/job-metrics.js";
import { href } from "../lib/router.js";
import { NotFound } from "./not-found.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const REFRESH_MS = 1500;

function useJob(id, eventCount, streamState) {
  const [state, setState] = useState({ job: null, checkpoints: [], error: null });
  const last = useRef(0);
  const load = async () => {
    last.current = Date.now();
    try {
      const [job, checkpoints] = await Promise.all([
        api(`/fine_tuning/jobs/${encodeURIComponent(id)}`),
        api(`/fine_tuning/jobs/${encodeURIComponent(id)}/checkpoints?limit=100`),
      ]);
      setState({ job, checkpoints: checkpoints.data, error: null });
    } catch (error) {
      setState((s) => ({ ...s, error }));
    }
  };
  // refresh as events arrive (at most every REFRESH_MS), and once the stream says it is done
  useEffect(() => {
    const wait = Math.max(0, REFRESH_MS - (Date.now() - last.current));
    const t = setTimeout(load, wait);
    return () => clearTimeout(t);
  }, [id, eventCount, streamState]);
  return { ...state, reload: load };
}

function Actions({ job, onChange, onError }) {
  const [busy, setBusy] = useState(null);
  const act = async (action) => {
    if (action === "cancel" && !confirm(`Cancel ${job.id}? A cancelled job cannot be resumed.`)) return;
    setBusy(action);
    try {
      await api(`/fine_tuning/jobs/${job.id}/${action}`, { method: "POST" });
      onChange();
    } catch (err) {
      onError(err);
    } finally {
      setBusy(null);
    }
  };
  const button = (action, label) =>
    html`<button type="button" class=${action === "cancel" ? "danger" : "secondary"} disabled=${busy !== null}
      onClick=${() => act(action)}>${busy === action ? `${label}…` : label}</button>`;
  if (TERMINAL.has(job.status)) return null;
  return html`<div class="actions">
    ${job.status === "paused" ? button("resume", "Resume") : job.status !== "validating_files" ? button("pause", "Pause") : null}
    ${button("cancel", "Cancel job")}
  </div>`;
}

function Downloads({ job, hasMerged, onError }) {
  if (!job.fine_tuned_model) return null;
  const safe = job.id;
  return html`<div class="actions">
    <a class="button" href=${href("playground", { a: job.model, b: job.fine_tuned_model })}>Chat with the tuned model</a>
    <button type="button" class="secondary" onClick=${() => download(`/fine_tuning/jobs/${job.id}/adapter`, `${safe}-adapter.tar`).catch(onError)}>
      Download adapter
    </button>
    ${
      hasMerged
        ? html`<button type="button" class="secondary" onClick=${() => download(`/fine_tuning/jobs/${job.id}/merged`, `${safe}-merged.tar`).catch(onError)}>
          Download merged weights
        </button>`
        : null
    }
  </div>`;
}

export function JobPage({ id }) {
  const stream = useJobEvents(id);
  const { job, checkpoints, error, reload } = useJob(id, stream.events.length, stream.state);
  const [actionError, setActionError] = useState(null);
  const [hasMerged, setHasMerged] = useState(false);
  useEffect(() => {
    apiPaths().then((paths) => setHasMerged(paths.has("/fine_tuning/jobs/{fine_tuning_job_id}/merged")));
  }, []);

  const byStep = useMemo(() => metricsByStep(stream.events), [stream.events]);
  const charts = useMemo(
    () => ({
      loss: chartData(byStep, LOSS_SERIES),
      accuracy: chartData(byStep, ACCURACY_SERIES),
      lr: chartData(byStep, LEARNING_RATE_SERIES),
      rewards: chartData(byStep, REWARD_SERIES),
      rewardAccuracy: chartData(byStep, REWARD_ACCURACY_SERIES),
    }),
    [byStep],
  );
  const progress = progressOf(byStep);

  if (error?.status === 404 || stream.error?.status === 404)
    return html`<${NotFound} what=${`job ${id} in this project`} />`;
  if (!job) {
    return html`<section><h1><code>${id}</code></h1>${error ? html`<${ErrorBox} error=${error} onRetry=${reload} />` : html`<p class="muted">Loading…</p>`}</section>`;
  }
  const eta =
    job.estimated_finish && job.status === "running" ? job.estimated_finish - Date.now() / 1000 : null;
  return html`
    <section class="job-page" data-job=${job.id}>
      <p class="crumbs"><a href="#/jobs">Jobs</a> / <code>${job.id}</code></p>
      <div class="page-head">
        <h1>${job.suffix ?? job.id} <${StatusBadge} status=${job.status} /></h1>
        <${Actions} job=${job} onChange=${reload} onError=${setActionError} />
      </div>
      <dl class="kv summary">
        <dt>Model</dt><dd>${job.model}</dd>
        <dt>Method</dt><dd>${job.method?.type ?? "supervised"}</dd>
        <dt>Training file</dt><dd><a href=${href("files", job.training_file)}><code>${job.training_file}</code></a></dd>
        ${job.validation_file ? html`<dt>Validation file</dt><dd><a href=${href("files", job.validation_file)}><code>${job.validation_file}</code></a></dd>` : null}
        <dt>Created</dt><dd>${formatTime(job.created_at)}</dd>
        ${job.finished_at ? html`<dt>Finished</dt><dd>${formatTime(job.finished_at)}</dd>` : null}
        ${job.trained_tokens != null ? html`<dt>Trained tokens</dt><dd>${formatNumber(job.trained_tokens)}</dd>` : null}
        ${job.fine_tuned_model ? html`<dt>Fine-tuned model</dt><dd><code class="wrap" id="fine-tuned-model">${job.fine_tuned_model}</code></dd>` : null}
        ${job.metadata ? html`<dt>Metadata</dt><dd>${Object.entries(job.metadata).map(([k, v]) => html`<span class="metric">${k}=${v}</span>`)}</dd>` : null}
      </dl>
      ${
        progress && !TERMINAL.has(job.status)
          ? html`<div class="progress-row">
            <${ProgressBar} value=${progress.step} max=${progress.total} label=${`Step ${progress.step} of ${progress.total}`} />
            ${eta != null ? html`<span class="small">ETA ${formatDuration(eta)}</span>` : null}
          </div>`
          : null
      }
      ${job.error ? html`<div class="error-box" role="alert"><strong>The job failed</strong> <span>${job.error.message}</span>${job.error.param ? html` <span class="muted">(${job.error.param})</span>` : null}</div>` : null}
      <${ErrorBox} error=${actionError} />
      <${Downloads} job=${job} hasMerged=${hasMerged} onError=${setActionError} />
      <div class="charts">
        <${MetricChart} id="loss-chart" title="Loss" chart=${charts.loss} empty=${TERMINAL.has(job.status) ? "this job reported no steps." : "waiting for the first step…"} />
        <${MetricChart} id="accuracy-chart" title="Token accuracy" chart=${charts.accuracy} />
        <${MetricChart} id="lr-chart" title="Learning rate" chart=${charts.lr} />
        ${charts.rewards ? html`<${MetricChart} id="rewards-chart" title="Rewards (DPO)" chart=${charts.rewards} />` : null}
        ${charts.rewardAccuracy ? html`<${MetricChart} id="reward-accuracy-chart" title="Reward accuracy (DPO)" chart=${charts.rewardAccuracy} />` : null}
      </div>
      <div class="columns">
        <${HyperparametersTable} job=${job} />
        <${CheckpointList} job=${job} checkpoints=${checkpoints} onError=${setActionError} />
      </div>
      <${ErrorBox} error=${stream.error} />
      <${EventLog} events=${stream.events} state=${stream.state} />
    </section>
  `;
}
