// Every change of a fine-tuning job's status, each in ONE transaction with the events it
// writes, the webhook event it enqueues (the outbox) and the NOTIFY that wakes workers. A
// transition locks the job's row (SELECT … FOR UPDATE, so the api and a worker never both win)
// and asks checkTransition (job-transitions.ts) whether it may happen; a refused one writes
// nothing. The user's transitions answer a refusal with a DomainError (404, or 400 naming the
// status); the api's validation and the worker's return false (someone else moved the job).
import { eq, sql } from "drizzle-orm";
import type { PgUpdateSetSource } from "drizzle-orm/pg-core";
import { deleteBlob, markBlobReady, type Queryable } from "../blobs/blob-store.js";
import type { Database } from "../db/client.js";
import { fineTuningJobs } from "../db/schema.js";
import { invalidRequest, notFound } from "../domain-error.js";
import { insertFile } from "../files/file-repository.js";
import { insertTunedModel } from "../models/tuned-models.js";
import { enqueueJobWebhookEvent } from "../webhooks/webhook-outbox.js";
import { pruneCheckpoints, replaceCheckpoint } from "./checkpoint-repository.js";
import { addEvent, addEvents, dropMetricsAfterStep, type NewEvent } from "./job-events.js";
import { newEventId, newJobId } from "./job-ids.js";
import type { JobError, JobRow, JobStatus } from "./job-objects.js";
import type { JobMethod, NewJob } from "./job-spec.js";
import { checkTransition, JOB_TRANSITIONS, type JobActor, type JobTransition } from "./job-transitions.js";
import { notifyWorkers } from "./jobs-channel.js";

type JobUpdate = PgUpdateSetSource<typeof fineTuningJobs>;

type Attempt =
  | { ok: true; before: JobRow; job: JobRow }
  /** job: the job as it is (null when missing) */
  | { ok: false; job: JobRow | null };

/** Locks the job, checks the transition, and applies its status with `set`. */
async function attempt(
  tx: Queryable,
  transition: JobTransition,
  jobId: string,
  actor: JobActor,
  set: JobUpdate = {},
): Promise<Attempt> {
  const [before] = await tx.select().from(fineTuningJobs).where(eq(fineTuningJobs.id, jobId)).for("update");
  const verdict = checkTransition(transition, before ?? null, actor);
  if (verdict !== "allowed") return { ok: false, job: verdict === "missing" ? null : before };
  const to = JOB_TRANSITIONS[transition].to as JobStatus | null;
  const update: JobUpdate = to === null ? set : { ...set, status: to };
  if (Object.keys(update).length === 0) return { ok: true, before, job: before };
  const [job] = await tx.update(fineTuningJobs).set(update).where(eq(fineTuningJobs.id, jobId)).returning();
  return { ok: true, before, job };
}

const now = () => sql`now()`;

// ---------------------------------------------------------------- the api

/** `baseModel`: the base under MODELS_DIR when `req.model` is a tuned model (fine-tuning a fine-tuned model). */
export async function createJob(
  db: Database,
  projectId: string,
  req: NewJob,
  baseModel: string | null = null,
): Promise<JobRow> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .insert(fineTuningJobs)
      .values({
        id: newJobId(),
        projectId,
        model: req.model,
        baseModel,
        trainingFile: req.trainingFile,
        validationFile: req.validationFile,
        status: "validating_files",
        method: req.method,
        suffix: req.suffix,
        seed: req.seed,
        metadata: req.metadata,
        integrations: req.integrations,
      })
      .returning();
    await addEvent(tx, row.id, { message: `Created fine-tuning job: ${row.id}` });
    await addEvent(tx, row.id, { message: `Validating training file: ${req.trainingFile}` });
    return row;
  });
}

/** The files look trainable: validating_files → queued, and an idle worker wakes. */
export async function queueValidatedJob(db: Database, jobId: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const a = await attempt(tx, "queue", jobId, {});
    if (!a.ok) return false;
    await addEvent(tx, jobId, { message: "Files validated, moving job to queued state" });
    await notifyWorkers(tx, jobId);
    return true;
  });
}

/** The files cannot be trained on: validating_files → failed with the problem as the job's error. */
export async function rejectJobFiles(db: Database, jobId: string, error: JobError): Promise<boolean> {
  return db.transaction(async (tx) => {
    const a = await attempt(tx, "reject", jobId, {}, { error, finishedAt: now() });
    if (!a.ok) return false;
    await addEvent(tx, jobId, { level: "error", message: `The job failed: ${error.message}` });
    await enqueueJobWebhookEvent(tx, a.job, "fine_tuning.job.failed");
    return true;
  });
}

// ---------------------------------------------------------------- the user

/** The answer when a user's transition was refused: 404, or 400 naming the status. */
function refuse(id: string, action: string, job: JobRow | null): never {
  if (!job) throw notFound("fine-tuning job", id, "fine_tuning_job_id");
  throw invalidRequest(
    `Job ${id} cannot be ${action}: its status is '${job.status}'.`,
    "fine_tuning_job_id",
    "invalid_job_status",
  );
}

async function userTransition(
  db: Database,
  transition: "cancel" | "pause" | "resume",
  projectId: string,
  id: string,
  set: JobUpdate,
  effects: (tx: Queryable, a: Extract<Attempt, { ok: true }>) => Promise<void>,
): Promise<JobRow> {
  const a = await db.transaction(async (tx) => {
    const done = await attempt(tx, transition, id, { projectId }, set);
    if (done.ok) await effects(tx, done);
    return done;
  });
  if (a.ok) return a.job;
  return refuse(id, { cancel: "cancelled", pause: "paused", resume: "resumed" }[transition], a.job);
}

/** A cancelled job is never resumed: its resume state goes (its checkpoints stay usable). */
export function cancelJob(db: Database, projectId: string, id: string): Promise<JobRow> {
  const set = { finishedAt: now(), estimatedFinish: null, resumeBlobId: null, resumeStep: null };
  return userTransition(db, "cancel", projectId, id, set, async (tx, { before, job }) => {
    if (before.resumeBlobId) await deleteBlob(tx, before.resumeBlobId);
    await addEvent(tx, id, { message: "The job was cancelled" });
    await enqueueJobWebhookEvent(tx, job, "fine_tuning.job.cancelled");
  });
}

/** A running job is paused by its worker at its next step (checkpoint, then the worker frees itself). */
export function pauseJob(db: Database, projectId: string, id: string): Promise<JobRow> {
  return userTransition(db, "pause", projectId, id, { estimatedFinish: null }, async (tx) => {
    await addEvent(tx, id, { message: "Pause requested: the job checkpoints at its next step and pauses" });
  });
}

export function resumeJob(db: Database, projectId: string, id: string): Promise<JobRow> {
  return userTransition(db, "resume", projectId, id, {}, async (tx) => {
    await addEvent(tx, id, { message: "Job resumed: queued to continue from its latest checkpoint" });
    await notifyWorkers(tx, id);
  });
}

// ---------------------------------------------------------------- the worker

export interface Claimed {
  job: JobRow;
  /** the job was `running` under another worker whose lease expired */
  takenOver: boolean;
  previousWorker: string | null;
  /** the status before the claim: validating_files (fallback), queued or running */
  previousStatus: JobStatus;
}

/** How long the api's own validation step has before a worker takes a new job over. */
export const VALIDATION_FALLBACK_SECONDS = 15;

export const leaseEnd = (leaseSeconds: number) =>
  sql`now() + make_interval(secs => ${leaseSeconds}::double precision)`;

/**
 * Takes the oldest claimable job with a lease: a queued job no live worker holds (→ running),
 * a running job whose lease expired (its worker died; the new owner resumes it from
 * `resume_blob_id`), or, as the fallback when the api died before its validation step, a job
 * `validating_files` for VALIDATION_FALLBACK_SECONDS (it stays so until the worker starts it).
 * One statement with FOR UPDATE SKIP LOCKED, so workers never wait on each other.
 */
export async function claimJob(
  q: Queryable,
  workerId: string,
  leaseSeconds: number,
): Promise<Claimed | null> {
  const t = fineTuningJobs;
  // The CTE keeps the previous owner for the "taken over" event; the UPDATE is the claim.
  const rows = await q.execute(sql`
    WITH candidate AS (
      SELECT id, status AS old_status, worker_id AS old_worker FROM ${t}
      WHERE (status = 'validating_files' AND (lease_expires_at IS NULL OR lease_expires_at < now())
             AND created_at < now() - make_interval(secs => ${VALIDATION_FALLBACK_SECONDS}::double precision))
         OR (status = 'queued' AND (worker_id IS NULL OR lease_expires_at IS NULL OR lease_expires_at < now()))
         OR (status = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < now()))
      ORDER BY created_at, id
      FOR UPDATE SKIP LOCKED
      LIMIT 1
    )
    UPDATE ${t} SET
      worker_id = ${workerId},
      lease_expires_at = ${leaseEnd(leaseSeconds)},
      status = CASE WHEN ${t.status} = 'validating_files' THEN 'validating_files' ELSE 'running' END
    FROM candidate WHERE ${t.id} = candidate.id
    RETURNING ${t.id} AS id, candidate.old_status AS old_status, candidate.old_worker AS old_worker`);
  const raw = (rows as unknown as { rows: { id: string; old_status: string; old_worker: string | null }[] })
    .rows;
  if (!raw || raw.length === 0) return null;
  const [job] = await q.select().from(t).where(eq(t.id, raw[0].id));
  return {
    job,
    takenOver: raw[0].old_status === "running" && raw[0].old_worker !== null,
    previousWorker: raw[0].old_worker,
    previousStatus: raw[0].old_status as JobStatus,
  };
}

export interface JobStart {
  /** the method with every `auto` resolved, written back into the job */
  method: JobMethod;
  /** what the data holds and the numbers chosen; empty when the job ran before */
  events: NewEvent[];
  /** the job never ran before: the `running` webhook is sent */
  firstStart: boolean;
}

/** queued (or validating_files) → running, with the resolved numbers written back into the job. */
export async function startJob(
  db: Database,
  job: JobRow,
  workerId: string,
  start: JobStart,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const a = await attempt(tx, "start", job.id, { workerId }, { method: start.method });
    if (!a.ok) return false;
    await addEvents(tx, job.id, start.events);
    if (start.firstStart) await enqueueJobWebhookEvent(tx, job, "fine_tuning.job.running");
    return true;
  });
}

/**
 * Records the start of a resumed run at `resumeStep`: the steps after it are trained again, so
 * the earlier run's metrics events for them are deleted and an event names them. Returns the
 * dropped steps (null when the job is not this worker's any more). Safe to retry: the event
 * ids are fixed by the caller's first call.
 */
export async function recordResume(
  db: Database,
  jobId: string,
  workerId: string,
  resumeStep: number,
  ids: { resuming: string; retrained: string } = { resuming: newEventId(), retrained: newEventId() },
): Promise<number[] | null> {
  return db.transaction(async (tx) => {
    if (!(await attempt(tx, "record", jobId, { workerId })).ok) return null;
    const dropped = await dropMetricsAfterStep(tx, jobId, resumeStep);
    const events: NewEvent[] = [
      { id: ids.resuming, message: `Resuming from the checkpoint at step ${resumeStep}` },
    ];
    if (dropped.length > 0)
      events.push({ id: ids.retrained, message: retrainedStepsMessage(resumeStep, dropped) });
    await addEvents(tx, jobId, events);
    return dropped;
  });
}

/** The message of the event that names the retrained steps. */
export function retrainedStepsMessage(resumeStep: number, dropped: number[]): string {
  const last = Math.max(...dropped);
  const steps = last === resumeStep + 1 ? `step ${last} is` : `steps ${resumeStep + 1}..${last} are`;
  return `Resumed from checkpoint at step ${resumeStep}; ${steps} retrained`;
}

export interface EpochCheckpoint {
  step: number;
  /** ft:…:ckpt-step-N */
  modelName: string;
  metrics: Record<string, number>;
  /** written, not yet ready: both are marked ready here, or the caller aborts them */
  adapterBlobId: string;
  resumeBlobId: string;
}

/** An epoch's checkpoint and the job's new resume point; false when the job is not ours any more. */
export async function recordCheckpoint(
  db: Database,
  job: JobRow,
  workerId: string,
  c: EpochCheckpoint,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const set = { resumeBlobId: c.resumeBlobId, resumeStep: c.step };
    const a = await attempt(tx, "record", job.id, { workerId }, set);
    if (!a.ok) return false;
    if (a.before.resumeBlobId) await deleteBlob(tx, a.before.resumeBlobId);
    await replaceCheckpoint(tx, { ...c, jobId: job.id, projectId: job.projectId });
    await markBlobReady(tx, c.adapterBlobId);
    await markBlobReady(tx, c.resumeBlobId);
    await pruneCheckpoints(tx, job.id);
    await addEvent(tx, job.id, { message: `Checkpoint created at step ${c.step}` });
    await enqueueJobWebhookEvent(tx, job, "fine_tuning.job.checkpoint.created");
    return true;
  });
}

const released = { workerId: null, leaseExpiresAt: null } as const;

/** A failed job is never resumed: its resume state (weights + optimizer moments) goes. */
export async function failJob(
  db: Database,
  job: JobRow,
  workerId: string,
  error: JobError,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const set = {
      error,
      finishedAt: now(),
      estimatedFinish: null,
      ...released,
      resumeBlobId: null,
      resumeStep: null,
    };
    const a = await attempt(tx, "fail", job.id, { workerId }, set);
    if (!a.ok) return false;
    if (a.before.resumeBlobId) await deleteBlob(tx, a.before.resumeBlobId);
    await addEvent(tx, job.id, { level: "error", message: `The job failed: ${error.message}` });
    await enqueueJobWebhookEvent(tx, job, "fine_tuning.job.failed");
    return true;
  });
}

export interface TrainedModel {
  /** ft:{base}:{project}:{suffix}:{job} */
  modelName: string;
  trainedTokens: number;
  /** written, not yet ready (marked ready here) */
  adapterBlobId: string;
  /** the step metrics CSV: the id is chosen by the caller so that a retry can recognise it */
  resultFile: { id: string; blobId: string; bytes: number };
}

/** The tuned model's row and the result file, their blobs made ready. */
async function publishModel(tx: Queryable, job: JobRow, model: TrainedModel): Promise<void> {
  await insertTunedModel(tx, {
    id: model.modelName,
    projectId: job.projectId,
    jobId: job.id,
    baseModel: job.baseModel ?? job.model,
    parentModel: job.baseModel ? job.model : null,
    adapterBlobId: model.adapterBlobId,
  });
  await insertFile(tx, {
    id: model.resultFile.id,
    projectId: job.projectId,
    blobId: model.resultFile.blobId,
    filename: "step_metrics.csv",
    purpose: "fine-tune-results",
    bytes: model.resultFile.bytes,
  });
  await markBlobReady(tx, model.adapterBlobId);
  await markBlobReady(tx, model.resultFile.blobId);
}

/**
 * running → succeeded, with the tuned model and the result file. `published_before`: an
 * earlier try committed but its answer was lost with the connection.
 */
export async function succeedJob(
  db: Database,
  job: JobRow,
  workerId: string,
  model: TrainedModel,
): Promise<"succeeded" | "published_before" | "refused"> {
  return db.transaction(async (tx) => {
    const file = model.resultFile;
    const set = {
      fineTunedModel: model.modelName,
      trainedTokens: model.trainedTokens,
      resultFiles: [file.id],
      finishedAt: now(),
      estimatedFinish: null,
      ...released,
      resumeBlobId: null,
    };
    const a = await attempt(tx, "succeed", job.id, { workerId }, set);
    if (!a.ok) {
      const results = a.job?.resultFiles as string[] | null | undefined;
      return results?.includes(file.id) ? "published_before" : "refused";
    }
    if (a.before.resumeBlobId) await deleteBlob(tx, a.before.resumeBlobId);
    await publishModel(tx, job, model);
    await addEvents(tx, job.id, [
      { message: `New fine-tuned model created: ${model.modelName}` },
      { message: "The job has successfully completed" },
    ]);
    await enqueueJobWebhookEvent(tx, job, "fine_tuning.job.succeeded");
    return "succeeded";
  });
}

/**
 * Stores a stopped run's state as the job's resume point and lets the job go: `park` after a
 * pause (the status stays), `requeue` when the worker shuts down (back to queued, and another
 * worker wakes). False when the job is not this worker's in that state any more.
 */
export async function suspendJob(
  db: Database,
  job: JobRow,
  workerId: string,
  how: "park" | "requeue",
  stopped: { step: number; resumeBlobId: string },
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const set = { resumeBlobId: stopped.resumeBlobId, resumeStep: stopped.step, ...released };
    const a = await attempt(tx, how, job.id, { workerId }, set);
    if (!a.ok) return false;
    if (a.before.resumeBlobId) await deleteBlob(tx, a.before.resumeBlobId);
    await markBlobReady(tx, stopped.resumeBlobId);
    const message =
      how === "park"
        ? `Job paused at step ${stopped.step}`
        : `Worker ${workerId} is shutting down: job checkpointed at step ${stopped.step} and queued again`;
    await addEvent(tx, job.id, { message });
    if (how === "requeue") await notifyWorkers(tx, job.id);
    return true;
  });
}
