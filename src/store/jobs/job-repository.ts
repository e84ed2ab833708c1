// Jobs in the database, the api's reads (find, list; every query scoped to the project: another
// project's job is a missing job) and its commands, which are the state machine's transitions
// (job-state-machine.ts): create, cancel, pause, resume. A job's checkpoints are listed by
// checkpoint-repository.ts.
import { and, desc, eq, isNull, lt, or, type SQL, sql } from "drizzle-orm";
import type { Queryable } from "../blobs/blob-store.js";
import type { Database } from "../db/client.js";
import { fineTuningJobs } from "../db/schema.js";
import { invalidRequest, notFound } from "../domain-error.js";
import type { JobRow } from "./job-objects.js";

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

export { listCheckpoints } from "./checkpoint-repository.js";
export { cancelJob, createJob, pauseJob, resumeJob } from "./job-state-machine.js";
