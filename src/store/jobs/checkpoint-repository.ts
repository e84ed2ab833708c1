// A job's checkpoints: one row per stored epoch end (its adapter archive in the blob store),
// of which only the newest three are kept and served, as OpenAI does. Written inside the
// state machine's checkpoint transaction (job-state-machine.ts); listed by the api.
import { and, desc, eq, inArray } from "drizzle-orm";
import { deleteBlob, type Queryable } from "../blobs/blob-store.js";
import { fineTuningCheckpoints } from "../db/schema.js";
import { invalidRequest } from "../domain-error.js";
import { newCheckpointId } from "./job-ids.js";
import type { CheckpointRow } from "./job-objects.js";

export const KEEP_CHECKPOINTS = 3;

export interface NewCheckpoint {
  jobId: string;
  projectId: string;
  step: number;
  /** ft:…:ckpt-step-N */
  modelName: string;
  metrics: Record<string, number>;
  adapterBlobId: string;
}

/** Stores the checkpoint of a step; one redone after a takeover replaces the dead worker's. */
export async function replaceCheckpoint(q: Queryable, c: NewCheckpoint): Promise<void> {
  const [old] = await q
    .delete(fineTuningCheckpoints)
    .where(and(eq(fineTuningCheckpoints.jobId, c.jobId), eq(fineTuningCheckpoints.stepNumber, c.step)))
    .returning({ blobId: fineTuningCheckpoints.adapterBlobId });
  if (old?.blobId) await deleteBlob(q, old.blobId);
  await q.insert(fineTuningCheckpoints).values({
    id: newCheckpointId(),
    jobId: c.jobId,
    projectId: c.projectId,
    stepNumber: c.step,
    modelName: c.modelName,
    metrics: c.metrics,
    adapterBlobId: c.adapterBlobId,
  });
}

/** Deletes all but the newest KEEP_CHECKPOINTS of the job, with their bytes. */
export async function pruneCheckpoints(q: Queryable, jobId: string): Promise<void> {
  const all = await q
    .select({ id: fineTuningCheckpoints.id, blobId: fineTuningCheckpoints.adapterBlobId })
    .from(fineTuningCheckpoints)
    .where(eq(fineTuningCheckpoints.jobId, jobId))
    .orderBy(desc(fineTuningCheckpoints.stepNumber));
  const stale = all.slice(KEEP_CHECKPOINTS);
  if (stale.length === 0) return;
  await q.delete(fineTuningCheckpoints).where(
    inArray(
      fineTuningCheckpoints.id,
      stale.map((c) => c.id),
    ),
  );
  for (const c of stale) if (c.blobId) await deleteBlob(q, c.blobId);
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
    .limit(KEEP_CHECKPOINTS);
  const start = opts.after === undefined ? 0 : newest.findIndex((c) => c.id === opts.after) + 1;
  if (opts.after !== undefined && start === 0) {
    throw invalidRequest(`No such checkpoint: ${opts.after} (the 'after' cursor)`, "after");
  }
  return newest.slice(start, start + opts.limit + 1);
}
