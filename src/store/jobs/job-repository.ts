// Jobs in the database, api side: create (with its first events, in one transaction; the
// files are validated next, validate-job-files.ts, which queues the job and wakes idle
// workers with a NOTIFY), find, list, and the user's transitions (cancel, pause, resume),
// each a single UPDATE guarded by the statuses it may leave, so the api and a worker never both
// win. Every query is scoped to the project: another project's job is a missing job.
import { and, desc, eq, inArray, isNull, lt, or, type SQL, sql } from "drizzle-orm";
import { deleteBlob, type Queryable } from "../blobs/blob-store.js";
import type { Database } from "../db/client.js";
import { fineTuningCheckpoints, fineTuningJobs } from "../db/schema.js";
import { invalidRequest, notFound } from "../domain-error.js";
import { enqueueJobWebhookEvent } from "../webhooks/webhook-outbox.js";
import { addEvent } from "./job-events.js";
import { newJobId } from "./job-ids.js";
import type { CheckpointRow, JobRow, JobStatus } from "./job-objects.js";
import type { NewJob } from "./job-spec.js";

/** The channel workers LISTEN on; the payload is the job id. */
export const JOBS_CHANNEL = "fine_tuning_jobs";

export async function notifyWorkers(q: Queryable, jobId: string): Promise<void> {
  await q.execute(sql`SELECT pg_notify(${JOBS_CHANNEL}, ${jobId})`);
}

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

export async function findJob(q: Queryable, projectId: string, id: string): Promise<JobRow | null> {
  const [row] = await q
    .select()
    .from(fineTuningJobs)
    .where(and(eq(fineTuningJobs.id, id), eq(fineTuningJobs.projectId, projectId)));
  return row ?? null;
}

export async function jobOr404(q: Queryable, projectId: string, id: string): Promise<JobRow> {
  const row = await findJob(q, projectId, id);
  if (!row) throw notFound("fine-tuning job", id, "fine_tuning_job_id");
  return row;
}

export interface JobListQuery {
  after?: string;
  limit: number;
  /** metadata[k]=v filters (all must match); null = jobs without metadata */
  metadata?: Record<string, string> | null;
}

/** Newest first; up to limit + 1 rows. */
export async function listJobs(db: Database, projectId: string, q: JobListQuery): Promise<JobRow[]> {
  const conditions: SQL[] = [eq(fineTuningJobs.projectId, projectId)];
  if (q.metadata === null) conditions.push(isNull(fineTuningJobs.metadata));
  else if (q.metadata !== undefined) {
    conditions.push(sql`${fineTuningJobs.metadata} @> ${JSON.stringify(q.metadata)}::jsonb`);
  }
  if (q.after !== undefined) {
    const cursor = await findJob(db, projectId, q.after);
    if (!cursor) throw invalidRequest(`No such fine-tuning job: ${q.after} (the 'after' cursor)`, "after");
    conditions.push(
      or(
        lt(fineTuningJobs.createdAt, cursor.createdAt),
        and(eq(fineTuningJobs.createdAt, cursor.createdAt), lt(fineTuningJobs.id, cursor.id)),
      )!,
    );
  }
  return db
    .select()
    .from(fineTuningJobs)
    .where(and(...conditions))
    .orderBy(desc(fineTuningJobs.createdAt), desc(fineTuningJobs.id))
    .limit(q.limit + 1);
}

/** The answer when a guarded transition matched nothing: 404, or 400 naming the status. */
async function transitionRefused(
  db: Database,
  projectId: string,
  id: string,
  action: string,
): Promise<never> {
  const row = await jobOr404(db, projectId, id);
  throw invalidRequest(
    `Job ${id} cannot be ${action}: its status is '${row.status}'.`,
    "fine_tuning_job_id",
    "invalid_job_status",
  );
}

const ACTIVE: JobStatus[] = ["validating_files", "queued", "running", "paused"];

export async function cancelJob(db: Database, projectId: string, id: string): Promise<JobRow> {
  const row = await db.transaction(async (tx) => {
    const guard = and(
      eq(fineTuningJobs.id, id),
      eq(fineTuningJobs.projectId, projectId),
      inArray(fineTuningJobs.status, ACTIVE),
    );
    // locked, so a worker storing a checkpoint right now waits, then sees the job cancelled
    const [current] = await tx
      .select({ resumeBlobId: fineTuningJobs.resumeBlobId })
      .from(fineTuningJobs)
      .where(guard)
      .for("update");
    if (!current) return undefined;
    const [updated] = await tx
      .update(fineTuningJobs)
      .set({
        status: "cancelled",
        finishedAt: sql`now()`,
        estimatedFinish: null,
        resumeBlobId: null,
        resumeStep: null,
      })
      .where(guard)
      .returning();
    // a cancelled job is never resumed: its resume state goes (its checkpoints stay usable)
    if (current.resumeBlobId) await deleteBlob(tx, current.resumeBlobId);
    await addEvent(tx, id, { message: "The job was cancelled" });
    await enqueueJobWebhookEvent(tx, updated, "fine_tuning.job.cancelled");
    return updated;
  });
  return row ?? transitionRefused(db, projectId, id, "cancelled");
}

/** A running job is paused by its worker at its next step (checkpoint, then the worker frees itself). */
export async function pauseJob(db: Database, projectId: string, id: string): Promise<JobRow> {
  const row = await db.transaction(async (tx) => {
    const [updated] = await tx
      .update(fineTuningJobs)
      .set({ status: "paused", estimatedFinish: null })
      .where(
        and(
          eq(fineTuningJobs.id, id),
          eq(fineTuningJobs.projectId, projectId),
          inArray(fineTuningJobs.status, ["validating_files", "queued", "running"]),
        ),
      )
      .returning();
    if (updated)
      await addEvent(tx, id, { message: "Pause requested: the job checkpoints at its next step and pauses" });
    return updated;
  });
  return row ?? transitionRefused(db, projectId, id, "paused");
}

export async function resumeJob(db: Database, projectId: string, id: string): Promise<JobRow> {
  const row = await db.transaction(async (tx) => {
    const [updated] = await tx
      .update(fineTuningJobs)
      .set({ status: "queued" })
      .where(
        and(
          eq(fineTuningJobs.id, id),
          eq(fineTuningJobs.projectId, projectId),
          eq(fineTuningJobs.status, "paused"),
        ),
      )
      .returning();
    if (updated) {
      await addEvent(tx, id, { message: "Job resumed: queued to continue from its latest checkpoint" });
      await notifyWorkers(tx, id);
    }
    return updated;
  });
  return row ?? transitionRefused(db, projectId, id, "resumed");
}

/** Newest (highest step) first; the API shows the last three, as OpenAI does. */
export async function listCheckpoints(
  q: Queryable,
  jobId: string,
  opts: { after?: string; limit: number },
): Promise<CheckpointRow[]> {
  const newest = await q
    .select()
    .from(fineTuningCheckpoints)
    .where(eq(fineTuningCheckpoints.jobId, jobId))
    .orderBy(desc(fineTuningCheckpoints.stepNumber))
    .limit(3);
  const start = opts.after === undefined ? 0 : newest.findIndex((c) => c.id === opts.after) + 1;
  if (opts.after !== undefined && start === 0) {
    throw invalidRequest(`No such checkpoint: ${opts.after} (the 'after' cursor)`, "after");
  }
  return newest.slice(start, start + opts.limit + 1);
}
