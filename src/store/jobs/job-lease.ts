// A worker's hold on the job it runs: the heartbeat that renews the lease, the read of what the
// job's owner should do next, the progress written while it trains, and letting go. Each is
// guarded by `worker_id = me`, so a worker that lost its lease (it was presumed dead and another
// took over) writes nothing. The claim and every status change are the state machine's
// (job-state-machine.ts).
import { and, eq } from "drizzle-orm";
import type { Queryable } from "../blobs/blob-store.js";
import type { Database } from "../db/client.js";
import { fineTuningJobs } from "../db/schema.js";
import { addEvents, type NewEvent } from "./job-events.js";
import type { JobStatus } from "./job-objects.js";
import { leaseEnd } from "./job-state-machine.js";

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

export interface LeaseHold {
  jobId: string;
  workerId: string;
  leaseSeconds: number;
}

/**
 * The trainer's step events and estimated finish, with a lease renewal (after an outage this is
 * the first write that proves the worker is back). False, and nothing written, when the job is
 * not this worker's any more. The estimated finish is kept only while the job runs.
 */
export async function writeProgress(
  db: Database,
  hold: LeaseHold,
  events: NewEvent[],
  estimatedFinish: Date | undefined,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .select({ workerId: fineTuningJobs.workerId, status: fineTuningJobs.status })
      .from(fineTuningJobs)
      .where(eq(fineTuningJobs.id, hold.jobId))
      .for("update");
    if (!row || row.workerId !== hold.workerId) return false;
    await addEvents(tx, hold.jobId, events);
    if (estimatedFinish && (row.status === "running" || row.status === "validating_files")) {
      await tx.update(fineTuningJobs).set({ estimatedFinish }).where(eq(fineTuningJobs.id, hold.jobId));
    }
    await renewLease(tx, hold.jobId, hold.workerId, hold.leaseSeconds);
    return true;
  });
}

/** Lets go of a job this worker holds, whatever its status now (after a pause, cancel, or shutdown). */
export async function releaseJob(q: Queryable, jobId: string, workerId: string): Promise<void> {
  await q
    .update(fineTuningJobs)
    .set({ workerId: null, leaseExpiresAt: null })
    .where(and(eq(fineTuningJobs.id, jobId), eq(fineTuningJobs.workerId, workerId)));
}
