// The start of a resumed run (after a takeover, a pause, a shutdown or a lost connection): the
// steps after the checkpoint are trained again, so the earlier run's metrics events for them
// are deleted in the same transaction that records the resume, and an event says which steps
// are retrained. The job's events and its result CSV then hold each step once.
import type { Database } from "../src/store/db/client.js";
import { fineTuningJobs } from "../src/store/db/schema.js";
import { addEvents, dropMetricsAfterStep, type NewEvent } from "../src/store/jobs/job-events.js";
import { newEventId } from "../src/store/jobs/job-ids.js";
import { ownedAndActive } from "../src/store/jobs/job-lease.js";

/** The message of the event that names the retrained steps. */
export function retrainedStepsMessage(resumeStep: number, dropped: number[]): string {
  const last = Math.max(...dropped);
  const steps = last === resumeStep + 1 ? `step ${last} is` : `steps ${resumeStep + 1}..${last} are`;
  return `Resumed from checkpoint at step ${resumeStep}; ${steps} retrained`;
}

/**
 * Records a resume at `resumeStep` if this worker still owns the job; returns the steps whose
 * earlier metrics were dropped (null when the job is not this worker's any more). Safe to
 * retry: the event ids are fixed by the caller's first call through `ids`.
 */
export async function recordResume(
  db: Database,
  jobId: string,
  workerId: string,
  resumeStep: number,
  ids: { resuming: string; retrained: string } = { resuming: newEventId(), retrained: newEventId() },
): Promise<number[] | null> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .select({ id: fineTuningJobs.id })
      .from(fineTuningJobs)
      .where(ownedAndActive(jobId, workerId))
      .for("update");
    if (!row) return null;
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
