// One claimed job, start to finish: prepare its inputs (read and tokenize the files, resolve
// `auto` hyperparameters; bad data fails the job), start it (the resolved numbers written back),
// train on the engine with a checkpoint at the end of every epoch, and publish the result in
// ONE transaction (adapter, fine_tuned_model, tuned model row, result CSV file, trained_tokens,
// finished_at), or stop: park on a pause, requeue on a shutdown, let go on a cancel. Every
// status change is a transition of the store's state machine (job-state-machine.ts).
//
// Ownership: every write is guarded by `worker_id = me`; before each step the job's row is read
// (readControl), so a cancel or pause written by the api lands within a step, and a worker that
// lost its lease stops without touching anything. A job taken over from a dead worker, or
// resumed after a pause or a shutdown, continues from `resume_blob_id` (weights, optimizer
// moments, step, data order, RNG): nothing trained before that checkpoint is redone.
import { isTransientDatabaseError } from "../src/store/db/transient-error.js";
import { newId } from "../src/store/ids.js";
import { addEvent } from "../src/store/jobs/job-events.js";
import { newEventId } from "../src/store/jobs/job-ids.js";
import { readControl, releaseJob } from "../src/store/jobs/job-lease.js";
import type { JobError } from "../src/store/jobs/job-objects.js";
import { findJob } from "../src/store/jobs/job-repository.js";
import { type Claimed, failJob, startJob } from "../src/store/jobs/job-state-machine.js";
import type { CausalLM } from "./engine/model/causal-lm.js";
import { TrainingDivergedError, type TrainResult } from "./engine/train/train-loop.js";
import { publishResults, storeResumeState } from "./job-outputs.js";
import { closeRun, type JobRun, openRun, outputTarget, type RunJobOptions } from "./job-run.js";
import {
  firstStartEvents,
  JobFailure,
  type PreparedData,
  prepareData,
  resolvedMethod,
} from "./prepare-data.js";
import {
  loadTrainee,
  modelArchive,
  preflightTraining,
  readResumePoint,
  type StopReason,
  trainModel,
} from "./train-job.js";
import { isOutOfMemory } from "./training-preflight.js";

export type { RunJobOptions } from "./job-run.js";

/** interrupted: the database went away outside training; the job was handed back to the queue */
export type JobOutcome =
  | "succeeded"
  | "failed"
  | "cancelled"
  | "paused"
  | "requeued"
  | "lost"
  | "interrupted";

export async function runJob(opts: RunJobOptions, claimed: Claimed): Promise<JobOutcome> {
  const run = openRun(opts, claimed.job);
  try {
    return await runClaimed(run, claimed);
  } catch (err) {
    return await handleError(run, err);
  } finally {
    await closeRun(run);
  }
}

async function runClaimed(run: JobRun, claimed: Claimed): Promise<JobOutcome> {
  if (claimed.takenOver) await noteTakeover(run, claimed.previousWorker);
  const data = await prepareInputs(run);
  if (!data) return "failed";
  const started = await startTraining(run, data, isFirstStart(claimed));
  if (started !== "running") return started;
  const preflight = await preflightTraining(run, data);
  if (preflight.failure) {
    const failure = preflight.failure;
    await run.retry(() => fail(run, failure));
    return "failed";
  }
  const resumeFrom = await readResumePoint(run);
  const model = await loadTrainee(run, data, preflight.estimate.gradientCheckpointing);
  const trained = await trainModel(run, data, model, resumeFrom);
  return finish(run, data, model, trained);
}

const fail = (run: JobRun, error: JobError) =>
  failJob(run.opts.database.db, run.job, run.opts.workerId, error);

async function noteTakeover(run: JobRun, previousWorker: string | null): Promise<void> {
  const id = newEventId();
  const message = `Worker ${previousWorker} stopped responding (lease expired); worker ${run.opts.workerId} takes the job over`;
  await run.retry(() => addEvent(run.opts.database.db, run.job.id, { id, level: "warn", message }));
}

/** The tokenized data, or null when it failed the job. */
async function prepareInputs(run: JobRun): Promise<PreparedData | null> {
  try {
    const data = await run.retry(() => prepareData(run.opts.database, run.opts.modelsDir, run.job));
    run.held.parent = data.parent;
    return data;
  } catch (err) {
    if (!(err instanceof JobFailure)) throw err;
    await run.retry(() => fail(run, err.error));
    return null;
  }
}

/**
 * A job that never ran before: claimed from `queued` (the api validated its files) or, as the
 * fallback, from `validating_files`, and not resuming from a checkpoint.
 */
const isFirstStart = (claimed: Claimed) =>
  claimed.previousStatus !== "running" && claimed.job.resumeStep === null;

/** → running, with the resolved method; or the outcome when a pause or cancel came first. */
async function startTraining(
  run: JobRun,
  data: PreparedData,
  firstStart: boolean,
): Promise<"running" | JobOutcome> {
  const { db } = run.opts.database;
  const { workerId } = run.opts;
  const start = {
    method: resolvedMethod(data),
    events: firstStart ? firstStartEvents(data) : [],
    firstStart,
  };
  if (await run.retry(() => startJob(db, run.job, workerId, start))) {
    run.job = (await run.retry(() => findJob(db, run.job.projectId, run.job.id))) ?? run.job;
    return "running";
  }
  // paused or cancelled while the files were being validated
  const control = await run.retry(() => readControl(db, run.job.id, workerId));
  if (control === "lost" || control === "continue") return "lost";
  await run.retry(() => releaseJob(db, run.job.id, workerId));
  return control;
}

/** Publishes a completed run, or stops one that was stopped (or finished while a cancel/pause landed). */
async function finish(
  run: JobRun,
  data: PreparedData,
  model: CausalLM,
  trained: { result: TrainResult; stopReason: StopReason },
): Promise<JobOutcome> {
  const { result } = trained;
  // everything trained so far is written before the job changes hands or finishes
  const drained = await run.progress.drain(run.opts.shuttingDown);
  if (drained === "lost") return "lost";
  let stopReason = trained.stopReason;
  if (result.status === "completed" && drained === "written") {
    const archive = await modelArchive(run, data, model);
    const fileId = newId("file-");
    const published = () => publishResults(outputTarget(run), archive, result.trainedTokens, fileId);
    if (await run.retry(published)) return "succeeded";
    // a cancel or pause landed after the last step (a paused job resumes at the end and publishes)
    stopReason = await run.retry(() => readControl(run.opts.database.db, run.job.id, run.opts.workerId));
  }
  const checkpoint = result.status === "stopped" ? { step: result.step, state: result.checkpoint } : null;
  return stop(run, stopReason, checkpoint, drained === "written");
}

/** Lets the job go after a stop: parked on a pause, requeued on a shutdown, released on a cancel. */
async function stop(
  run: JobRun,
  reason: StopReason,
  checkpoint: { step: number; state: Uint8Array } | null,
  written: boolean,
): Promise<JobOutcome> {
  const { db } = run.opts.database;
  const release = () => releaseJob(db, run.job.id, run.opts.workerId);
  switch (reason) {
    case "paused":
      if (checkpoint)
        await run.retry(() => storeResumeState(outputTarget(run), "park", checkpoint.step, checkpoint.state));
      await run.retry(release);
      return "paused";
    case "shutdown":
      // a shutdown while the database is away cannot wait long: the lease then runs out and
      // another worker resumes from the last stored checkpoint
      if (checkpoint && written)
        await storeResumeState(outputTarget(run), "requeue", checkpoint.step, checkpoint.state);
      await release();
      return "requeued";
    case "cancelled":
      await run.retry(release);
      return "cancelled";
    default:
      return written ? "lost" : "interrupted";
  }
}

/** A lost database hands the job back (it resumes from its last checkpoint); anything else fails it. */
async function handleError(run: JobRun, err: unknown): Promise<JobOutcome> {
  const { opts, job } = run;
  if (isTransientDatabaseError(err)) {
    opts.log(
      `job ${job.id} interrupted by the database (${(err as Error).message}); handing it back to the queue`,
    );
    await run.retry(() => releaseJob(opts.database.db, job.id, opts.workerId)).catch(() => {});
    return "interrupted";
  }
  opts.log(`job ${job.id} failed: ${(err as Error).stack ?? err}`);
  await run
    .retry(() => fail(run, trainingError(err)))
    .catch((e) => opts.log(`could not mark ${job.id} failed: ${(e as Error).message}`));
  return "failed";
}

/** The job's error for an exception out of training. */
function trainingError(err: unknown): JobError {
  const message = (err as Error).message;
  if (err instanceof TrainingDivergedError) return { code: "training_diverged", message, param: null };
  if (isOutOfMemory(err)) {
    return {
      code: "insufficient_memory",
      message: `Training ran out of memory (${message.split("\n")[0]}). Lower max_seq_length or WORKER_MICRO_BATCH, or run the worker on the tensorflow backend (npm run build:tfjs-node).`,
      param: null,
    };
  }
  return { code: "training_error", message: `Training failed: ${message}`, param: null };
}
