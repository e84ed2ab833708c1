// Jobs in the database, worker side: the claim (FOR UPDATE SKIP LOCKED + a lease), the
// heartbeat that renews it, and the worker's own transitions, each guarded by `worker_id = me`
// so a worker that lost its lease (it was presumed dead and another took over) writes nothing.
//
// Claimable: a queued job that no live worker holds, or a running job whose lease expired (its
// worker died): the new owner resumes it from `resume_blob_id`. A new job is moved from
// `validating_files` to `queued` (or `failed`) by the api right after create
// (validate-job-files.ts); a job still `validating_files` VALIDATION_FALLBACK_SECONDS after
// its creation lost that step (the api died in between) and is claimed as a fallback: the
// worker validates it while tokenizing and starts it straight away.
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Queryable } from "../blobs/blob-store.js";
import { fineTuningJobs } from "../db/schema.js";
import type { JobRow, JobStatus } from "./job-objects.js";

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

const leaseEnd = (leaseSeconds: number) =>
  sql`now() + make_interval(secs => ${leaseSeconds}::double precision)`;

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

/** Renews the lease; returns the job's status, or null when this worker no longer owns it. */
export async function renewLease(
  q: Queryable,
  jobId: string,
  workerId: string,
  leaseSeconds: number,
): Promise<JobStatus | null> {
  const [row] = await q
    .update(fineTuningJobs)
    .set({ leaseExpiresAt: leaseEnd(leaseSeconds) })
    .where(and(eq(fineTuningJobs.id, jobId), eq(fineTuningJobs.workerId, workerId)))
    .returning({ status: fineTuningJobs.status });
  return (row?.status as JobStatus | undefined) ?? null;
}

/** What the job's owner should do now: go on, or stop (and why). */
export type JobControl = "continue" | "cancelled" | "paused" | "lost";

export async function readControl(q: Queryable, jobId: string, workerId: string): Promise<JobControl> {
  const [row] = await q
    .select({ status: fineTuningJobs.status, workerId: fineTuningJobs.workerId })
    .from(fineTuningJobs)
    .where(eq(fineTuningJobs.id, jobId));
  if (!row || row.workerId !== workerId) return "lost";
  if (row.status === "cancelled") return "cancelled";
  if (row.status === "paused" || row.status === "queued") return "paused";
  if (row.status === "running" || row.status === "validating_files") return "continue";
  return "lost";
}

/** Guard for every write of the owner while it works on the job. */
export const ownedAndActive = (jobId: string, workerId: string) =>
  and(
    eq(fineTuningJobs.id, jobId),
    eq(fineTuningJobs.workerId, workerId),
    inArray(fineTuningJobs.status, ["validating_files", "running"]),
  )!;

/** Lets go of a job this worker holds, whatever its status now (after a pause, cancel, or shutdown). */
export async function releaseJob(q: Queryable, jobId: string, workerId: string): Promise<void> {
  await q
    .update(fineTuningJobs)
    .set({ workerId: null, leaseExpiresAt: null })
    .where(and(eq(fineTuningJobs.id, jobId), eq(fineTuningJobs.workerId, workerId)));
}
