// One claimed job, start to finish: read and tokenize the files (failing the job on bad data,
// as OpenAI does; the api already refused what the upload summaries show, see
// worker/validate-job-files.ts, and this is the full check after tokenizing), resolve
// `auto` hyperparameters and write them back, train on the engine with a checkpoint at the end
// of every epoch, and publish the result in ONE transaction (adapter, fine_tuned_model, tuned
// model row, result CSV file, trained_tokens, finished_at).
//
// Ownership: every write is guarded by `worker_id = me`; before each step the job's row is read
// (readControl), so a cancel or pause written by the api lands within a step, and a worker that
// lost its lease stops without touching anything. A job taken over from a dead worker, or
// resumed after a pause or a shutdown, continues from `resume_blob_id` (weights, optimizer
// moments, step, data order, RNG): nothing trained before that checkpoint is redone.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { and, desc, eq, inArray, sql } from "drizzle-orm";
import { type JobMethod, methodHyperparameters } from "../src/http/fine-tuning/create-job-request.js";
import { type BlobWriter, deleteBlob, markBlobReady } from "../src/store/blobs/blob-store.js";
import type { DatabaseHandle } from "../src/store/db/client.js";
import { retryTransient } from "../src/store/db/retry-transient.js";
import { files, fineTunedModels, fineTuningCheckpoints, fineTuningJobs } from "../src/store/db/schema.js";
import { isTransientDatabaseError } from "../src/store/db/transient-error.js";
import { findFile } from "../src/store/files/file-repository.js";
import { newId } from "../src/store/ids.js";
import { addEvent, addEvents, metricsData, type NewEvent } from "../src/store/jobs/job-events.js";
import {
  checkpointModelName,
  newCheckpointId,
  newEventId,
  tunedModelName,
} from "../src/store/jobs/job-ids.js";
import {
  type Claimed,
  type JobControl,
  ownedAndActive,
  readControl,
  releaseJob,
  renewLease,
} from "../src/store/jobs/job-lease.js";
import type { JobError, JobRow } from "../src/store/jobs/job-objects.js";
import { notifyWorkers } from "../src/store/jobs/job-repository.js";
import { archiveFolder } from "../src/store/models/adapter-archive.js";
import { findBaseModel } from "../src/store/models/base-models.js";
import { enqueueJobWebhookEvent } from "../src/store/webhooks/webhook-outbox.js";
import {
  datasetError,
  datasetWarnings,
  formatError,
  missingFileError,
  soleFormat,
} from "./dataset-problems.js";
import { dpoObjectives, dpoStartEvents, loadPreferenceData } from "./dpo-job.js";
import { initBackend } from "./engine/backend/backend.js";
import type { TokenBatch } from "./engine/data/batch.js";
import { buildDataset, type PreferenceDataset, type SftDataset } from "./engine/data/build-dataset.js";
import { resolveChatTemplate } from "./engine/hf/chat-template.js";
import { parseModelConfig } from "./engine/hf/config.js";
import { loadTokenizer } from "./engine/hf/tokenizer.js";
import type { LoraTargetModule } from "./engine/lora/lora-targets.js";
import { mergeAdapterIntoBase } from "./engine/lora/merge-adapter.js";
import type { CausalLM } from "./engine/model/causal-lm.js";
import { loadModel } from "./engine/model/load-model.js";
import {
  type ResolvedDpoHyperparameters,
  resolveDpoHyperparameters,
} from "./engine/train/dpo-hyperparameters.js";
import { type ResolvedHyperparameters, resolveHyperparameters } from "./engine/train/hyperparameters.js";
import { type EpochEnd, type StepMetrics, TrainingDivergedError, train } from "./engine/train/train-loop.js";
import type { TrainObjective } from "./engine/train/train-objective.js";
import { readBlobBytes, readFileLines, writeBlobBytes } from "./job-blobs.js";
import { JobProgress } from "./job-progress.js";
import { chainedModelArchive, fetchParentAdapter, type ParentAdapter } from "./parent-adapter.js";
import { resultsCsv } from "./results-csv.js";
import { recordResume } from "./resume-point.js";
import { isOutOfMemory, trainingPreflight } from "./training-preflight.js";

export interface RunJobOptions {
  database: DatabaseHandle;
  modelsDir: string;
  workerId: string;
  leaseSeconds: number;
  /** true once the worker is asked to exit: the job checkpoints and goes back to the queue */
  shuttingDown: () => boolean;
  log: (message: string) => void;
  /** rows per forward/backward pass (the engine's default is 4) */
  microBatchSize?: number;
}

/** interrupted: the database went away outside training; the job was handed back to the queue */
export type JobOutcome =
  | "succeeded"
  | "failed"
  | "cancelled"
  | "paused"
  | "requeued"
  | "lost"
  | "interrupted";

/** A job-level failure with OpenAI's error shape. */
class JobFailure extends Error {
  constructor(readonly error: JobError) {
    super(error.message);
  }
}

/** Keeps the claim alive; `lost` turns true when someone else owns the job. */
function startHeartbeat(opts: RunJobOptions, jobId: string) {
  const state = { lost: false };
  const timer = setInterval(
    () => {
      renewLease(opts.database.db, jobId, opts.workerId, opts.leaseSeconds).then(
        (status) => {
          if (status === null) state.lost = true;
        },
        (err) => opts.log(`heartbeat for ${jobId} failed: ${(err as Error).message}`),
      );
    },
    Math.max(200, (opts.leaseSeconds * 1000) / 3),
  );
  timer.unref();
  return { state, stop: () => clearInterval(timer) };
}

async function failJob(opts: RunJobOptions, job: JobRow, error: JobError): Promise<void> {
  const { db } = opts.database;
  await db.transaction(async (tx) => {
    const [current] = await tx
      .select({ resumeBlobId: fineTuningJobs.resumeBlobId })
      .from(fineTuningJobs)
      .where(ownedAndActive(job.id, opts.workerId))
      .for("update");
    if (!current) return;
    // a failed job is never resumed: its resume state (weights + optimizer moments) goes
    await tx
      .update(fineTuningJobs)
      .set({
        status: "failed",
        error,
        finishedAt: sql`now()`,
        estimatedFinish: null,
        workerId: null,
        leaseExpiresAt: null,
        resumeBlobId: null,
        resumeStep: null,
      })
      .where(eq(fineTuningJobs.id, job.id));
    if (current.resumeBlobId) await deleteBlob(tx, current.resumeBlobId);
    await addEvent(tx, job.id, { level: "error", message: `The job failed: ${error.message}` });
    await enqueueJobWebhookEvent(tx, job, "fine_tuning.job.failed");
  });
}

type PreparedData = (
  | { kind: "supervised"; train: SftDataset; validation: SftDataset | null; hp: ResolvedHyperparameters }
  | {
      kind: "dpo";
      train: PreferenceDataset;
      validation: PreferenceDataset | null;
      hp: ResolvedDpoHyperparameters;
    }
) & {
  folder: string;
  padId: number;
  /** fine-tuning a fine-tuned model: the parent's adapter, merged into the base before training */
  parent: ParentAdapter | null;
};

async function prepareData(opts: RunJobOptions, job: JobRow): Promise<PreparedData> {
  const handle = opts.database;
  const method = job.method as JobMethod;
  const requested = methodHyperparameters(method);
  const baseName = job.baseModel ?? job.model;
  const base = await findBaseModel({ modelsDir: opts.modelsDir }, baseName);
  if (!base) {
    throw new JobFailure({
      code: "model_not_found",
      message: `Base model '${baseName}' is no longer under MODELS_DIR on this worker`,
      param: "model",
    });
  }
  const parent = job.baseModel ? await fetchParentAdapter(handle, job.projectId, job.model) : null;
  if (job.baseModel && !parent) {
    throw new JobFailure({
      code: "model_not_found",
      message: `The model '${job.model}' no longer exists (it was deleted, or the checkpoint pruned)`,
      param: "model",
    });
  }
  const tokenizer = await loadTokenizer(base.dir);
  const template = resolveChatTemplate(tokenizer.chatTemplate, {
    specialTokens: tokenizer.specialTokensMap,
    now: () => job.createdAt,
  });
  const maxSeqLength = requested.max_seq_length ?? resolveHyperparameters(requested, 1).max_seq_length;
  const packing = requested.packing ?? true;
  const readLines = async (fileId: string, param: "training_file" | "validation_file") => {
    const file = await findFile(handle.db, job.projectId, fileId);
    if (!file) throw new JobFailure(missingFileError(fileId, param));
    return readFileLines(handle, file.blobId);
  };
  if (method.type === "dpo") {
    const loadPairs = async (fileId: string, param: "training_file" | "validation_file") => {
      const { data, problem } = loadPreferenceData(
        await readLines(fileId, param),
        tokenizer,
        template,
        maxSeqLength,
        param,
      );
      if (problem) throw new JobFailure(problem);
      return data;
    };
    const trainPairs = await loadPairs(job.trainingFile, "training_file");
    const validPairs = job.validationFile ? await loadPairs(job.validationFile, "validation_file") : null;
    const hp = resolveDpoHyperparameters(method.dpo.hyperparameters, trainPairs.stats.examples);
    return {
      kind: "dpo",
      train: trainPairs,
      validation: validPairs,
      hp,
      folder: base.dir,
      padId: tokenizer.padId,
      parent,
    };
  }
  const load = async (fileId: string, param: "training_file" | "validation_file") => {
    const lines = await readLines(fileId, param);
    const data = buildDataset(lines, tokenizer, template, { maxSeqLength, packing, seed: job.seed });
    const problem =
      formatError(soleFormat(data.stats.formats), param) ?? datasetError(data.stats, param, maxSeqLength);
    if (problem) throw new JobFailure(problem);
    return data;
  };
  const trainData = await load(job.trainingFile, "training_file");
  const validation = job.validationFile ? await load(job.validationFile, "validation_file") : null;
  const hp = resolveHyperparameters(requested, trainData.stats.examples);
  return {
    kind: "supervised",
    train: trainData,
    validation,
    hp,
    folder: base.dir,
    padId: tokenizer.padId,
    parent,
  };
}

/**
 * A job that never ran before: claimed from `queued` (the api validated its files) or, as the
 * fallback, from `validating_files`, and not resuming from a checkpoint.
 */
const isFirstStart = (claimed: Claimed) =>
  claimed.previousStatus !== "running" && claimed.job.resumeStep === null;

/** queued (or validating_files) → running, with the resolved numbers written back into the job. */
async function startRunning(
  opts: RunJobOptions,
  job: JobRow,
  data: PreparedData,
  firstStart: boolean,
): Promise<boolean> {
  const { db } = opts.database;
  const method: JobMethod =
    data.kind === "dpo"
      ? { type: "dpo", dpo: { hyperparameters: { ...data.hp } } }
      : { type: "supervised", supervised: { hyperparameters: { ...data.hp } } };
  const s = data.train.stats;
  const events: NewEvent[] = [];
  if (firstStart && data.kind === "dpo") {
    events.push(...dpoStartEvents(data.train, data.validation, data.hp), {
      message: "Fine-tuning job started",
    });
  } else if (firstStart) {
    events.push({
      message: `Training data: ${s.examples} examples, ${s.totalTokens} tokens in ${s.rows} rows (packing efficiency ${(s.packingEfficiency * 100).toFixed(1)}%)`,
    });
    for (const w of datasetWarnings(s, "training", data.hp.max_seq_length))
      events.push({ level: "warn", message: w });
    if (data.validation) {
      for (const w of datasetWarnings(data.validation.stats, "validation", data.hp.max_seq_length))
        events.push({ level: "warn", message: w });
    }
    events.push({
      message: `Hyperparameters: n_epochs=${data.hp.n_epochs}, batch_size=${data.hp.batch_size}, learning_rate_multiplier=${data.hp.learning_rate_multiplier}`,
    });
    events.push({ message: "Fine-tuning job started" });
  }
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(fineTuningJobs)
      .set({ status: "running", method })
      .where(ownedAndActive(job.id, opts.workerId))
      .returning({ id: fineTuningJobs.id });
    if (row) await addEvents(tx, job.id, events);
    if (row && firstStart) await enqueueJobWebhookEvent(tx, job, "fine_tuning.job.running");
    return row !== undefined;
  });
}

async function saveModelArchive(
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

const KEEP_CHECKPOINTS = 3;

async function storeEpochCheckpoint(
  opts: RunJobOptions,
  job: JobRow,
  end: EpochEnd,
  archive: Uint8Array,
  resume: Uint8Array,
): Promise<boolean> {
  const handle = opts.database;
  const adapter = await writeBlobBytes(handle, job.projectId, archive);
  const state = await writeBlobBytes(handle, job.projectId, resume);
  const modelName = checkpointModelName(
    tunedModelName(job.baseModel ?? job.model, job.projectId, job.suffix, job.id),
    end.step,
  );
  const m = end.metrics;
  const metrics: Record<string, number> = { step: end.step };
  if (m) {
    metrics.train_loss = m.train_loss;
    if (m.valid_loss !== undefined) metrics.valid_loss = m.valid_loss;
    Object.assign(metrics, m.extra);
  }
  const stored = await handle.db.transaction(async (tx) => {
    const [previous] = await tx
      .select({ resumeBlobId: fineTuningJobs.resumeBlobId })
      .from(fineTuningJobs)
      .where(ownedAndActive(job.id, opts.workerId))
      .for("update");
    if (!previous) return false;
    await tx
      .update(fineTuningJobs)
      .set({ resumeBlobId: state.blobId, resumeStep: end.step })
      .where(eq(fineTuningJobs.id, job.id));
    if (previous.resumeBlobId) await deleteBlob(tx, previous.resumeBlobId);
    // a step redone after a takeover replaces the dead worker's checkpoint of that step
    const [old] = await tx
      .delete(fineTuningCheckpoints)
      .where(and(eq(fineTuningCheckpoints.jobId, job.id), eq(fineTuningCheckpoints.stepNumber, end.step)))
      .returning({ blobId: fineTuningCheckpoints.adapterBlobId });
    if (old?.blobId) await deleteBlob(tx, old.blobId);
    await tx.insert(fineTuningCheckpoints).values({
      id: newCheckpointId(),
      jobId: job.id,
      projectId: job.projectId,
      stepNumber: end.step,
      modelName,
      metrics,
      adapterBlobId: adapter.blobId,
    });
    await markBlobReady(tx, adapter.blobId);
    await markBlobReady(tx, state.blobId);
    // only the last three are served (OpenAI's rule); older ones and their bytes go
    const all = await tx
      .select({ id: fineTuningCheckpoints.id, blobId: fineTuningCheckpoints.adapterBlobId })
      .from(fineTuningCheckpoints)
      .where(eq(fineTuningCheckpoints.jobId, job.id))
      .orderBy(desc(fineTuningCheckpoints.stepNumber));
    const stale = all.slice(KEEP_CHECKPOINTS);
    if (stale.length > 0) {
      await tx.delete(fineTuningCheckpoints).where(
        inArray(
          fineTuningCheckpoints.id,
          stale.map((c) => c.id),
        ),
      );
      for (const c of stale) if (c.blobId) await deleteBlob(tx, c.blobId);
    }
    await addEvent(tx, job.id, { message: `Checkpoint created at step ${end.step}` });
    await enqueueJobWebhookEvent(tx, job, "fine_tuning.job.checkpoint.created");
    return true;
  });
  if (!stored) {
    await adapter.abort();
    await state.abort();
  }
  return stored;
}

/** Stores the state of a stopped run as the job's resume point (pause and shutdown). */
async function storeResumeState(
  opts: RunJobOptions,
  job: JobRow,
  step: number,
  checkpoint: Uint8Array,
  then: { status: "paused" | "queued"; message: string },
): Promise<boolean> {
  const handle = opts.database;
  const state = await writeBlobBytes(handle, job.projectId, checkpoint);
  const stored = await handle.db.transaction(async (tx) => {
    const fromStatuses = then.status === "paused" ? ["paused", "queued"] : ["running"];
    const [previous] = await tx
      .select({ resumeBlobId: fineTuningJobs.resumeBlobId })
      .from(fineTuningJobs)
      .where(
        and(
          eq(fineTuningJobs.id, job.id),
          eq(fineTuningJobs.workerId, opts.workerId),
          inArray(fineTuningJobs.status, fromStatuses),
        ),
      )
      .for("update");
    if (!previous) return false;
    const set: Partial<typeof fineTuningJobs.$inferInsert> = {
      resumeBlobId: state.blobId,
      resumeStep: step,
      workerId: null,
      leaseExpiresAt: null,
    };
    if (then.status === "queued") set.status = "queued";
    await tx.update(fineTuningJobs).set(set).where(eq(fineTuningJobs.id, job.id));
    if (previous.resumeBlobId) await deleteBlob(tx, previous.resumeBlobId);
    await markBlobReady(tx, state.blobId);
    await addEvent(tx, job.id, { message: then.message });
    if (then.status === "queued") await notifyWorkers(tx, job.id);
    return true;
  });
  if (!stored) await state.abort();
  return stored;
}

async function publish(
  opts: RunJobOptions,
  job: JobRow,
  archive: Uint8Array,
  trainedTokens: number,
  fileId: string,
): Promise<boolean> {
  const handle = opts.database;
  const csv = Buffer.from(resultsCsv(await metricsData(handle.db, job.id)), "utf8");
  const blobsWritten: BlobWriter[] = [];
  try {
    const adapter = await writeBlobBytes(handle, job.projectId, archive);
    blobsWritten.push(adapter);
    const results = await writeBlobBytes(handle, job.projectId, csv);
    blobsWritten.push(results);
    const modelName = tunedModelName(job.baseModel ?? job.model, job.projectId, job.suffix, job.id);
    let publishedBefore = false;
    const done = await handle.db.transaction(async (tx) => {
      const [row] = await tx
        .update(fineTuningJobs)
        .set({
          status: "succeeded",
          fineTunedModel: modelName,
          trainedTokens,
          resultFiles: [fileId],
          finishedAt: sql`now()`,
          estimatedFinish: null,
          workerId: null,
          leaseExpiresAt: null,
          resumeBlobId: null,
        })
        .where(and(ownedAndActive(job.id, opts.workerId), eq(fineTuningJobs.status, "running")))
        .returning({ resumeBlobId: fineTuningJobs.resumeBlobId });
      if (!row) {
        // an earlier try committed, but its answer was lost with the connection
        const [now] = await tx
          .select({ resultFiles: fineTuningJobs.resultFiles })
          .from(fineTuningJobs)
          .where(eq(fineTuningJobs.id, job.id));
        publishedBefore = (now?.resultFiles as string[] | null)?.includes(fileId) ?? false;
        return false;
      }
      if (job.resumeBlobId) await deleteBlob(tx, job.resumeBlobId).catch(() => {});
      await tx.insert(fineTunedModels).values({
        id: modelName,
        projectId: job.projectId,
        jobId: job.id,
        baseModel: job.baseModel ?? job.model,
        parentModel: job.baseModel ? job.model : null,
        adapterBlobId: adapter.blobId,
      });
      await tx.insert(files).values({
        id: fileId,
        projectId: job.projectId,
        blobId: results.blobId,
        filename: "step_metrics.csv",
        purpose: "fine-tune-results",
        bytes: csv.length,
        status: "processed",
      });
      await markBlobReady(tx, adapter.blobId);
      await markBlobReady(tx, results.blobId);
      await addEvents(tx, job.id, [
        { message: `New fine-tuned model created: ${modelName}` },
        { message: "The job has successfully completed" },
      ]);
      await enqueueJobWebhookEvent(tx, job, "fine_tuning.job.succeeded");
      return true;
    });
    if (!done) for (const b of blobsWritten) await b.abort();
    return done || publishedBefore;
  } catch (err) {
    for (const b of blobsWritten) await b.abort().catch(() => {});
    throw err;
  }
}

/** The rows and length of one forward pass: a DPO pair is two rows (chosen and rejected). */
function passShape(data: PreparedData, microBatch: number): { microBatch: number; seqLen: number } {
  if (data.kind === "supervised") {
    return { microBatch, seqLen: Math.max(data.train.batch.seqLen, data.validation?.batch.seqLen ?? 0) };
  }
  let seqLen = 0;
  for (const p of [...data.train.pairs, ...(data.validation?.pairs ?? [])]) {
    seqLen = Math.max(seqLen, p.promptIds.length + Math.max(p.chosenIds.length, p.rejectedIds.length));
  }
  return { microBatch: 2 * microBatch, seqLen };
}

export async function runJob(opts: RunJobOptions, claimed: Claimed): Promise<JobOutcome> {
  const { db } = opts.database;
  let job = claimed.job;
  const heartbeat = startHeartbeat(opts, job.id);
  let model: CausalLM | null = null;
  // Outside training, a lost connection waits for the database (with backoff) and tries again.
  const retry = <T>(attempt: () => Promise<T>) =>
    retryTransient(attempt, {
      giveUp: opts.shuttingDown,
      onRetry: (err, n, delay) => {
        if (n === 1 || n % 10 === 0)
          opts.log(
            `job ${job.id}: database unavailable (${(err as Error).message}); retrying in ${delay} ms`,
          );
      },
    });
  const progress = new JobProgress({
    database: opts.database,
    jobId: job.id,
    workerId: opts.workerId,
    leaseSeconds: opts.leaseSeconds,
    log: opts.log,
  });
  let parent: ParentAdapter | null = null;
  try {
    if (claimed.takenOver) {
      const id = newEventId();
      await retry(() =>
        addEvent(db, job.id, {
          id,
          level: "warn",
          message: `Worker ${claimed.previousWorker} stopped responding (lease expired); worker ${opts.workerId} takes the job over`,
        }),
      );
    }
    let data: PreparedData;
    try {
      data = await retry(() => prepareData(opts, job));
      parent = data.parent;
    } catch (err) {
      if (err instanceof JobFailure) {
        await retry(() => failJob(opts, job, err.error));
        return "failed";
      }
      throw err;
    }
    if (!(await retry(() => startRunning(opts, job, data, isFirstStart(claimed))))) {
      // paused or cancelled while the files were being validated
      const control = await retry(() => readControl(db, job.id, opts.workerId));
      if (control === "lost" || control === "continue") return "lost";
      await retry(() => releaseJob(db, job.id, opts.workerId));
      return control;
    }
    [job] = await retry(() => db.select().from(fineTuningJobs).where(eq(fineTuningJobs.id, job.id)));

    const hp = data.hp;
    // the backend and whether a step fits its memory, stated in the job's events on every start
    const backend = await initBackend();
    const microBatch = Math.min(opts.microBatchSize ?? 4, hp.batch_size);
    const preflight = trainingPreflight({
      backend,
      config: parseModelConfig(JSON.parse(await readFile(join(data.folder, "config.json"), "utf8"))),
      method: hp.full_finetune ? "full" : "lora",
      loraRank: hp.lora_rank,
      loraTargets: hp.target_modules,
      loraDropout: hp.lora_dropout,
      ...passShape(data, microBatch),
      maxSeqLength: hp.max_seq_length,
    });
    await retry(() => addEvents(db, job.id, preflight.events));
    if (preflight.failure) {
      const failure = preflight.failure;
      await retry(() => failJob(opts, job, failure));
      return "failed";
    }
    let resumeFrom: Uint8Array | undefined;
    if (job.resumeBlobId) {
      const resumeBlobId = job.resumeBlobId;
      resumeFrom = await retry(() => readBlobBytes(opts.database, resumeBlobId));
      const ids = { resuming: newEventId(), retrained: newEventId() };
      await retry(() => recordResume(db, job.id, opts.workerId, job.resumeStep ?? 0, ids));
    }
    model = await loadModel(data.folder, { fullFinetune: hp.full_finetune, seed: job.seed });
    // a fine-tuned parent: its adapter merged into the base weights; the new adapter (and DPO's
    // reference, the model with that adapter disabled) sits on top of the parent
    if (data.parent) await mergeAdapterIntoBase(model, data.parent.dir);
    if (!hp.full_finetune) {
      model.attachLora({
        r: hp.lora_rank,
        alpha: hp.lora_alpha,
        dropout: hp.lora_dropout,
        targetModules: hp.target_modules as LoraTargetModule[],
      });
    }
    model.gradientCheckpointing = preflight.estimate.gradientCheckpointing;
    const trainedModel = model;
    const rootModel = job.baseModel ?? job.model;
    const archiveOf = (m: CausalLM) =>
      data.parent
        ? chainedModelArchive(m, data.parent, hp.full_finetune, rootModel)
        : saveModelArchive(m, hp, rootModel);

    let stopReason = "continue" as JobControl | "shutdown";
    let startedAt = Date.now();
    let firstStep: number | null = null;
    const onStep = async (m: StepMetrics) => {
      firstStep ??= m.step - 1;
      const done = m.step - firstStep;
      const perStep = (Date.now() - startedAt) / Math.max(1, done);
      const estimatedFinish = new Date(Date.now() + perStep * (m.total_steps - m.step));
      const data: Record<string, number> = {
        step: m.step,
        total_steps: m.total_steps,
        train_loss: m.train_loss,
        ...m.extra,
        learning_rate: m.learning_rate,
        trained_tokens: m.trained_tokens,
      };
      if (m.valid_loss !== undefined) data.valid_loss = m.valid_loss;
      // One event per step, as OpenAI sends them: a `metrics` event whose message reads as a log line.
      const valid = m.valid_loss !== undefined ? `, validation loss=${m.valid_loss.toFixed(4)}` : "";
      const events: NewEvent[] = [
        {
          type: "metrics",
          message: `Step ${m.step}/${m.total_steps}: training loss=${m.train_loss.toFixed(4)}${valid}`,
          data,
        },
      ];
      // written now, or kept while the database is away (training goes on meanwhile)
      progress.addEvents(events, estimatedFinish);
      await progress.flush();
    };
    const onEpochEnd = async (end: EpochEnd) => {
      const archive = await archiveOf(trainedModel);
      progress.addTask(() => storeEpochCheckpoint(opts, job, end, archive, end.checkpoint));
      await progress.flush();
    };
    const shouldStop = async (): Promise<boolean> => {
      if (stopReason !== "continue") return true;
      if (heartbeat.state.lost || progress.lost) stopReason = "lost";
      else if (opts.shuttingDown()) stopReason = "shutdown";
      else if (progress.databaseDue()) {
        try {
          stopReason = await readControl(db, job.id, opts.workerId);
        } catch (err) {
          // the database is away: keep training; the queued writes re-check ownership on return
          if (!isTransientDatabaseError(err)) throw err;
        }
      }
      return stopReason !== "continue";
    };
    let objectives: { train: TrainObjective | TokenBatch; validation?: TrainObjective | TokenBatch };
    if (data.kind === "dpo") {
      const dpo = await dpoObjectives(
        trainedModel,
        data.train,
        data.validation,
        data.hp,
        data.padId,
        opts.microBatchSize ?? 4,
      );
      objectives = dpo;
      opts.log(
        `job ${job.id}: reference log-probs of ${data.train.pairs.length + (data.validation?.pairs.length ?? 0)} pairs in ${dpo.referenceMs.toFixed(0)} ms`,
      );
    } else {
      objectives = { train: data.train.batch, validation: data.validation?.batch };
    }
    startedAt = Date.now();
    const result = await train({
      model: trainedModel,
      train: objectives.train,
      validation: objectives.validation,
      hyperparameters: hp,
      seed: job.seed,
      microBatchSize: opts.microBatchSize,
      onStep,
      onEpochEnd,
      shouldStop,
      resumeFrom,
      checkpointMeta: { job: job.id, hyperparameters: hp },
    });

    // everything trained so far is written before the job changes hands or finishes
    const drained = await progress.drain(opts.shuttingDown);
    if (drained === "lost") return "lost";
    if (result.status === "completed" && drained === "written") {
      const archive = await archiveOf(trainedModel);
      const fileId = newId("file-");
      if (await retry(() => publish(opts, job, archive, result.trainedTokens, fileId))) return "succeeded";
      // a cancel or pause landed after the last step (a paused job resumes at the end and publishes)
      stopReason = await retry(() => readControl(db, job.id, opts.workerId));
    }
    // stopped (or finished while a cancel/pause landed)
    const checkpoint = result.status === "stopped" ? result.checkpoint : null;
    switch (stopReason) {
      case "paused":
        if (checkpoint) {
          await retry(() =>
            storeResumeState(opts, job, result.step, checkpoint, {
              status: "paused",
              message: `Job paused at step ${result.step}`,
            }),
          );
        }
        await retry(() => releaseJob(db, job.id, opts.workerId));
        return "paused";
      case "shutdown":
        // a shutdown while the database is away cannot wait long: the lease then runs out and
        // another worker resumes from the last stored checkpoint
        if (checkpoint && drained === "written") {
          await storeResumeState(opts, job, result.step, checkpoint, {
            status: "queued",
            message: `Worker ${opts.workerId} is shutting down: job checkpointed at step ${result.step} and queued again`,
          });
        }
        await releaseJob(db, job.id, opts.workerId);
        return "requeued";
      case "cancelled":
        await retry(() => releaseJob(db, job.id, opts.workerId));
        return "cancelled";
      default:
        return drained === "gave_up" ? "interrupted" : "lost";
    }
  } catch (err) {
    if (isTransientDatabaseError(err)) {
      // not the job's fault: hand it back (it resumes from its last checkpoint) instead of failing it
      opts.log(
        `job ${job.id} interrupted by the database (${(err as Error).message}); handing it back to the queue`,
      );
      await retry(() => releaseJob(db, job.id, opts.workerId)).catch(() => {});
      return "interrupted";
    }
    const diverged = err instanceof TrainingDivergedError;
    opts.log(`job ${job.id} failed: ${(err as Error).stack ?? err}`);
    const oom = !diverged && isOutOfMemory(err);
    await retry(() =>
      failJob(opts, job, {
        code: diverged ? "training_diverged" : oom ? "insufficient_memory" : "training_error",
        message: diverged
          ? (err as Error).message
          : oom
            ? `Training ran out of memory (${(err as Error).message.split("\n")[0]}). Lower max_seq_length or WORKER_MICRO_BATCH, or run the worker on the tensorflow backend (npm run build:tfjs-node).`
            : `Training failed: ${(err as Error).message}`,
        param: null,
      }),
    ).catch((e) => opts.log(`could not mark ${job.id} failed: ${(e as Error).message}`));
    return "failed";
  } finally {
    heartbeat.stop();
    model?.dispose();
    await parent?.cleanup();
  }
}
