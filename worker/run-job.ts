// One claimed job, start to finish: read and tokenize the files (failing the job on bad data,
// as OpenAI does; the api already refused what the upload summaries show, see
// src/fine-tuning/validate-job-files.ts, and this is the full check after tokenizing), resolve
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
import { eq, inArray, and, desc, sql } from "drizzle-orm";
import { deleteBlob, markBlobReady, type BlobWriter } from "../src/blobs/blob-store.js";
import type { DatabaseHandle } from "../src/db/client.js";
import { fineTunedModels, fineTuningCheckpoints, fineTuningJobs, files } from "../src/db/schema.js";
import { findFile } from "../src/files/file-repository.js";
import { archiveFolder } from "../src/fine-tuning/adapter-archive.js";
import type { JobMethod } from "../src/fine-tuning/create-job-request.js";
import { addEvent, addEvents, metricsData, type NewEvent } from "../src/fine-tuning/job-events.js";
import { checkpointModelName, newCheckpointId, tunedModelName } from "../src/fine-tuning/job-ids.js";
import { type Claimed, type JobControl, ownedAndActive, readControl, releaseJob, renewLease } from "../src/fine-tuning/job-lease.js";
import type { JobError, JobRow } from "../src/fine-tuning/job-objects.js";
import { notifyWorkers } from "../src/fine-tuning/job-repository.js";
import { newId } from "../src/ids.js";
import { findBaseModel } from "../src/models/base-models.js";
import { initBackend } from "./engine/backend.js";
import { buildDataset, type SftDataset } from "./engine/data/build-dataset.js";
import { parseModelConfig } from "./engine/hf/config.js";
import { resolveChatTemplate } from "./engine/hf/chat-template.js";
import { loadTokenizer } from "./engine/hf/tokenizer.js";
import { type CausalLM, loadModel } from "./engine/model/decoder.js";
import type { LoraTargetModule } from "./engine/model/lora.js";
import { type ResolvedHyperparameters, resolveHyperparameters } from "./engine/train/hyperparameters.js";
import { type EpochEnd, type StepMetrics, train, TrainingDivergedError } from "./engine/train/train-loop.js";
import { datasetError, datasetWarnings, formatError, missingFileError, soleFormat } from "./dataset-problems.js";
import { readBlobBytes, readFileLines, writeBlobBytes } from "./job-blobs.js";
import { resultsCsv } from "./results-csv.js";
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

export type JobOutcome = "succeeded" | "failed" | "cancelled" | "paused" | "requeued" | "lost";

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
  });
}

interface PreparedData {
  train: SftDataset;
  validation: SftDataset | null;
  hp: ResolvedHyperparameters;
  folder: string;
}

async function prepareData(opts: RunJobOptions, job: JobRow): Promise<PreparedData> {
  const handle = opts.database;
  const method = job.method as JobMethod;
  const requested = method.supervised.hyperparameters;
  const base = await findBaseModel({ modelsDir: opts.modelsDir }, job.model);
  if (!base) {
    throw new JobFailure({ code: "model_not_found", message: `Base model '${job.model}' is no longer under MODELS_DIR on this worker`, param: "model" });
  }
  const tokenizer = await loadTokenizer(base.dir);
  const template = resolveChatTemplate(tokenizer.chatTemplate, {
    specialTokens: tokenizer.specialTokensMap,
    now: () => job.createdAt,
  });
  const maxSeqLength = requested.max_seq_length ?? resolveHyperparameters(requested, 1).max_seq_length;
  const packing = requested.packing ?? true;
  const load = async (fileId: string, param: "training_file" | "validation_file") => {
    const file = await findFile(handle.db, job.projectId, fileId);
    if (!file) throw new JobFailure(missingFileError(fileId, param));
    const lines = await readFileLines(handle, file.blobId);
    const data = buildDataset(lines, tokenizer, template, { maxSeqLength, packing, seed: job.seed });
    const problem = formatError(soleFormat(data.stats.formats), param) ?? datasetError(data.stats, param, maxSeqLength);
    if (problem) throw new JobFailure(problem);
    return data;
  };
  const trainData = await load(job.trainingFile, "training_file");
  const validation = job.validationFile ? await load(job.validationFile, "validation_file") : null;
  const hp = resolveHyperparameters(requested, trainData.stats.examples);
  return { train: trainData, validation, hp, folder: base.dir };
}

/**
 * A job that never ran before: claimed from `queued` (the api validated its files) or, as the
 * fallback, from `validating_files`, and not resuming from a checkpoint.
 */
const isFirstStart = (claimed: Claimed) => claimed.previousStatus !== "running" && claimed.job.resumeStep === null;

/** queued (or validating_files) → running, with the resolved numbers written back into the job. */
async function startRunning(opts: RunJobOptions, job: JobRow, data: PreparedData, firstStart: boolean): Promise<boolean> {
  const { db } = opts.database;
  const method: JobMethod = { type: "supervised", supervised: { hyperparameters: { ...data.hp } } };
  const s = data.train.stats;
  const events: NewEvent[] = [];
  if (firstStart) {
    events.push({
      message: `Training data: ${s.examples} examples, ${s.totalTokens} tokens in ${s.rows} rows (packing efficiency ${(s.packingEfficiency * 100).toFixed(1)}%)`,
    });
    for (const w of datasetWarnings(s, "training", data.hp.max_seq_length)) events.push({ level: "warn", message: w });
    if (data.validation) {
      for (const w of datasetWarnings(data.validation.stats, "validation", data.hp.max_seq_length)) events.push({ level: "warn", message: w });
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
    return row !== undefined;
  });
}

async function saveModelArchive(model: CausalLM, hp: ResolvedHyperparameters, baseModel: string): Promise<Uint8Array> {
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
  const modelName = checkpointModelName(tunedModelName(job.model, job.projectId, job.suffix, job.id), end.step);
  const m = end.metrics;
  const metrics: Record<string, number> = { step: end.step };
  if (m) {
    metrics.train_loss = m.train_loss;
    metrics.train_mean_token_accuracy = m.train_mean_token_accuracy;
    if (m.valid_loss !== undefined) metrics.valid_loss = m.valid_loss;
    if (m.valid_mean_token_accuracy !== undefined) metrics.valid_mean_token_accuracy = m.valid_mean_token_accuracy;
  }
  const stored = await handle.db.transaction(async (tx) => {
    const [previous] = await tx
      .select({ resumeBlobId: fineTuningJobs.resumeBlobId })
      .from(fineTuningJobs)
      .where(ownedAndActive(job.id, opts.workerId))
      .for("update");
    if (!previous) return false;
    await tx.update(fineTuningJobs).set({ resumeBlobId: state.blobId, resumeStep: end.step }).where(eq(fineTuningJobs.id, job.id));
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
      await tx.delete(fineTuningCheckpoints).where(inArray(fineTuningCheckpoints.id, stale.map((c) => c.id)));
      for (const c of stale) if (c.blobId) await deleteBlob(tx, c.blobId);
    }
    await addEvent(tx, job.id, { message: `Checkpoint created at step ${end.step}` });
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
      .where(and(eq(fineTuningJobs.id, job.id), eq(fineTuningJobs.workerId, opts.workerId), inArray(fineTuningJobs.status, fromStatuses)))
      .for("update");
    if (!previous) return false;
    const set: Partial<typeof fineTuningJobs.$inferInsert> = { resumeBlobId: state.blobId, resumeStep: step, workerId: null, leaseExpiresAt: null };
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
): Promise<boolean> {
  const handle = opts.database;
  const csv = Buffer.from(resultsCsv(await metricsData(handle.db, job.id)), "utf8");
  const blobsWritten: BlobWriter[] = [];
  try {
    const adapter = await writeBlobBytes(handle, job.projectId, archive);
    blobsWritten.push(adapter);
    const results = await writeBlobBytes(handle, job.projectId, csv);
    blobsWritten.push(results);
    const modelName = tunedModelName(job.model, job.projectId, job.suffix, job.id);
    const fileId = newId("file-");
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
      if (!row) return false;
      if (job.resumeBlobId) await deleteBlob(tx, job.resumeBlobId).catch(() => {});
      await tx.insert(fineTunedModels).values({
        id: modelName,
        projectId: job.projectId,
        jobId: job.id,
        baseModel: job.model,
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
      return true;
    });
    if (!done) for (const b of blobsWritten) await b.abort();
    return done;
  } catch (err) {
    for (const b of blobsWritten) await b.abort().catch(() => {});
    throw err;
  }
}

export async function runJob(opts: RunJobOptions, claimed: Claimed): Promise<JobOutcome> {
  const { db } = opts.database;
  let job = claimed.job;
  const heartbeat = startHeartbeat(opts, job.id);
  let model: CausalLM | null = null;
  try {
    if (claimed.takenOver) {
      await addEvent(db, job.id, {
        level: "warn",
        message: `Worker ${claimed.previousWorker} stopped responding (lease expired); worker ${opts.workerId} takes the job over`,
      });
    }
    let data: PreparedData;
    try {
      data = await prepareData(opts, job);
    } catch (err) {
      if (err instanceof JobFailure) {
        await failJob(opts, job, err.error);
        return "failed";
      }
      throw err;
    }
    if (!(await startRunning(opts, job, data, isFirstStart(claimed)))) {
      // paused or cancelled while the files were being validated
      const control = await readControl(db, job.id, opts.workerId);
      if (control === "lost" || control === "continue") return "lost";
      await releaseJob(db, job.id, opts.workerId);
      return control;
    }
    [job] = await db.select().from(fineTuningJobs).where(eq(fineTuningJobs.id, job.id));

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
      microBatch,
      seqLen: Math.max(data.train.batch.seqLen, data.validation?.batch.seqLen ?? 0),
      maxSeqLength: hp.max_seq_length,
    });
    await addEvents(db, job.id, preflight.events);
    if (preflight.failure) {
      await failJob(opts, job, preflight.failure);
      return "failed";
    }
    let resumeFrom: Uint8Array | undefined;
    if (job.resumeBlobId) {
      resumeFrom = await readBlobBytes(opts.database, job.resumeBlobId);
      await addEvent(db, job.id, { message: `Resuming from the checkpoint at step ${job.resumeStep}` });
    }
    model = await loadModel(data.folder, {
      ...(hp.full_finetune
        ? { fullFinetune: true }
        : {
            lora: {
              r: hp.lora_rank,
              alpha: hp.lora_alpha,
              dropout: hp.lora_dropout,
              targetModules: hp.target_modules as LoraTargetModule[],
            },
          }),
      seed: job.seed,
    });
    model.gradientCheckpointing = preflight.estimate.gradientCheckpointing;
    const trainedModel = model;

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
        train_mean_token_accuracy: m.train_mean_token_accuracy,
        learning_rate: m.learning_rate,
        trained_tokens: m.trained_tokens,
      };
      if (m.valid_loss !== undefined) data.valid_loss = m.valid_loss;
      if (m.valid_mean_token_accuracy !== undefined) data.valid_mean_token_accuracy = m.valid_mean_token_accuracy;
      // One event per step, as OpenAI sends them: a `metrics` event whose message reads as a log line.
      const valid = m.valid_loss !== undefined ? `, validation loss=${m.valid_loss.toFixed(4)}` : "";
      const events: NewEvent[] = [
        { type: "metrics", message: `Step ${m.step}/${m.total_steps}: training loss=${m.train_loss.toFixed(4)}${valid}`, data },
      ];
      await db.transaction(async (tx) => {
        await addEvents(tx, job.id, events);
        await tx.update(fineTuningJobs).set({ estimatedFinish }).where(ownedAndActive(job.id, opts.workerId));
      });
    };
    const onEpochEnd = async (end: EpochEnd) => {
      const archive = await saveModelArchive(trainedModel, hp, job.model);
      if (!(await storeEpochCheckpoint(opts, job, end, archive, end.checkpoint))) stopReason = "lost";
    };
    const shouldStop = async (): Promise<boolean> => {
      if (stopReason !== "continue") return true;
      if (heartbeat.state.lost) stopReason = "lost";
      else if (opts.shuttingDown()) stopReason = "shutdown";
      else stopReason = await readControl(db, job.id, opts.workerId);
      return stopReason !== "continue";
    };
    startedAt = Date.now();
    const result = await train({
      model: trainedModel,
      train: data.train.batch,
      validation: data.validation?.batch,
      hyperparameters: hp,
      seed: job.seed,
      microBatchSize: opts.microBatchSize,
      onStep,
      onEpochEnd,
      shouldStop,
      resumeFrom,
      checkpointMeta: { job: job.id, hyperparameters: hp },
    });

    if (result.status === "completed") {
      const archive = await saveModelArchive(trainedModel, hp, job.model);
      if (await publish(opts, job, archive, result.trainedTokens)) return "succeeded";
      // a cancel or pause landed after the last step (a paused job resumes at the end and publishes)
      stopReason = await readControl(db, job.id, opts.workerId);
    }
    // stopped (or finished while a cancel/pause landed)
    const checkpoint = result.status === "stopped" ? result.checkpoint : null;
    switch (stopReason) {
      case "paused":
        if (checkpoint) {
          await storeResumeState(opts, job, result.step, checkpoint, { status: "paused", message: `Job paused at step ${result.step}` });
        }
        await releaseJob(db, job.id, opts.workerId);
        return "paused";
      case "shutdown":
        if (checkpoint) {
          await storeResumeState(opts, job, result.step, checkpoint, {
            status: "queued",
            message: `Worker ${opts.workerId} is shutting down: job checkpointed at step ${result.step} and queued again`,
          });
        }
        await releaseJob(db, job.id, opts.workerId);
        return "requeued";
      case "cancelled":
        await releaseJob(db, job.id, opts.workerId);
        return "cancelled";
      default:
        return "lost";
    }
  } catch (err) {
    const diverged = err instanceof TrainingDivergedError;
    opts.log(`job ${job.id} failed: ${(err as Error).stack ?? err}`);
    const oom = !diverged && isOutOfMemory(err);
    await failJob(opts, job, {
      code: diverged ? "training_diverged" : oom ? "insufficient_memory" : "training_error",
      message: diverged
        ? (err as Error).message
        : oom
          ? `Training ran out of memory (${(err as Error).message.split("\n")[0]}). Lower max_seq_length or WORKER_MICRO_BATCH, or run the worker on the tensorflow backend (npm run build:tfjs-node).`
          : `Training failed: ${(err as Error).message}`,
      param: null,
    }).catch((e) => opts.log(`could not mark ${job.id} failed: ${(e as Error).message}`));
    return "failed";
  } finally {
    heartbeat.stop();
    model?.dispose();
  }
}
