// What a run produces, written as blobs and then handed to the state machine's transaction
// that makes them the job's: an epoch's checkpoint, the resume state of a stopped run, the
// tuned model with its result CSV. The blobs stay `writing` until that transaction marks them
// ready; when it refuses (the job is not this worker's any more), they are aborted.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BlobWriter } from "../src/store/blobs/blob-store.js";
import type { DatabaseHandle } from "../src/store/db/client.js";
import { metricsData } from "../src/store/jobs/job-events.js";
import { checkpointModelName, tunedModelName } from "../src/store/jobs/job-ids.js";
import type { JobRow } from "../src/store/jobs/job-objects.js";
import { recordCheckpoint, succeedJob, suspendJob } from "../src/store/jobs/job-state-machine.js";
import { archiveFolder } from "../src/store/models/adapter-archive.js";
import type { CausalLM } from "./engine/model/causal-lm.js";
import type { ResolvedHyperparameters } from "./engine/train/hyperparameters.js";
import type { EpochEnd } from "./engine/train/train-loop.js";
import { writeBlobBytes } from "./job-blobs.js";
import { resultsCsv } from "./results-csv.js";

export interface OutputTarget {
  database: DatabaseHandle;
  workerId: string;
  job: JobRow;
}

const modelNameOf = (job: JobRow) =>
  tunedModelName(job.baseModel ?? job.model, job.projectId, job.suffix, job.id);

export async function saveModelArchive(
  model: CausalLM,
  hp: Pick<ResolvedHyperparameters, "full_finetune">,
  baseModel: string,
): Promise<Uint8Array> {
  const dir = await mkdtemp(join(tmpdir(), "tunehouse-adapter-"));
  try {
    if (hp.full_finetune) await model.saveFullModel(dir);
    else await model.saveAdapter(dir, baseModel);
    return await archiveFolder(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The checkpoint's metrics: its step, the losses and the objective's extra numbers. */
function checkpointMetrics(end: EpochEnd): Record<string, number> {
  const m = end.metrics;
  const metrics: Record<string, number> = { step: end.step };
  if (m) {
    metrics.train_loss = m.train_loss;
    if (m.valid_loss !== undefined) metrics.valid_loss = m.valid_loss;
    Object.assign(metrics, m.extra);
  }
  return metrics;
}

/** False when the job is not this worker's any more (nothing was kept). */
export async function storeEpochCheckpoint(
  t: OutputTarget,
  end: EpochEnd,
  archive: Uint8Array,
  resume: Uint8Array,
): Promise<boolean> {
  const adapter = await writeBlobBytes(t.database, t.job.projectId, archive);
  const state = await writeBlobBytes(t.database, t.job.projectId, resume);
  const stored = await recordCheckpoint(t.database.db, t.job, t.workerId, {
    step: end.step,
    modelName: checkpointModelName(modelNameOf(t.job), end.step),
    metrics: checkpointMetrics(end),
    adapterBlobId: adapter.blobId,
    resumeBlobId: state.blobId,
  });
  if (!stored) {
    await adapter.abort();
    await state.abort();
  }
  return stored;
}

/** Stores the state of a stopped run as the job's resume point (pause: park; shutdown: requeue). */
export async function storeResumeState(
  t: OutputTarget,
  how: "park" | "requeue",
  step: number,
  checkpoint: Uint8Array,
): Promise<boolean> {
  const state = await writeBlobBytes(t.database, t.job.projectId, checkpoint);
  const stored = await suspendJob(t.database.db, t.job, t.workerId, how, {
    step,
    resumeBlobId: state.blobId,
  });
  if (!stored) await state.abort();
  return stored;
}

/**
 * The tuned model and its result CSV, published with the job's success. True when the job is
 * succeeded now (by this call or by an earlier try whose answer was lost); `fileId` is fixed by
 * the caller so that a retry recognises its own earlier commit.
 */
export async function publishResults(
  t: OutputTarget,
  archive: Uint8Array,
  trainedTokens: number,
  fileId: string,
): Promise<boolean> {
  const csv = Buffer.from(resultsCsv(await metricsData(t.database.db, t.job.id)), "utf8");
  const written: BlobWriter[] = [];
  try {
    const adapter = await writeBlobBytes(t.database, t.job.projectId, archive);
    written.push(adapter);
    const results = await writeBlobBytes(t.database, t.job.projectId, csv);
    written.push(results);
    const outcome = await succeedJob(t.database.db, t.job, t.workerId, {
      modelName: modelNameOf(t.job),
      trainedTokens,
      adapterBlobId: adapter.blobId,
      resultFile: { id: fileId, blobId: results.blobId, bytes: csv.length },
    });
    if (outcome !== "succeeded") for (const b of written) await b.abort();
    return outcome !== "refused";
  } catch (err) {
    for (const b of written) await b.abort().catch(() => {});
    throw err;
  }
}
