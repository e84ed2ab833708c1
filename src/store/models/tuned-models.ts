// Tuned models and their checkpoints as /v1/models entries, visible to their project only.
// A tuned model is its base model plus an adapter archive (src/store/models/adapter-archive.ts)
// in the blob store; chat completions resolve any model id with findTunedModel.
//
//   const tuned = await findTunedModel(db, projectId, "ft:tiny-chatml:proj_…::ftjob-…");
//   // { id, baseModel, adapterBlobId, jobId, kind: "model" | "checkpoint", created }
//   const entries = await readTarArchive(await readAll(readBlob(database, tuned.adapterBlobId)));
import { and, asc, eq, isNotNull, sql } from "drizzle-orm";
import type { Queryable } from "../blobs/blob-store.js";
import { deleteBlob } from "../blobs/blob-store.js";
import type { Database } from "../db/client.js";
import { fineTunedModels, fineTuningCheckpoints, fineTuningJobs } from "../db/schema.js";
import { unixSeconds } from "../unix-seconds.js";
import type { ModelObject } from "./base-models.js";

export interface TunedModel {
  id: string;
  kind: "model" | "checkpoint";
  baseModel: string;
  adapterBlobId: string;
  jobId: string;
  /** Unix seconds */
  created: number;
  projectId: string;
}

export function tunedToModelObject(model: TunedModel): ModelObject {
  return { id: model.id, object: "model", created: model.created, owned_by: model.projectId };
}

export const isTunedModelId = (id: string): boolean => id.startsWith("ft:");

type ModelRow = typeof fineTunedModels.$inferSelect;
type CheckpointRow = typeof fineTuningCheckpoints.$inferSelect;

function fromModelRow(m: ModelRow): TunedModel {
  return {
    id: m.id,
    kind: "model",
    baseModel: m.baseModel,
    adapterBlobId: m.adapterBlobId,
    jobId: m.jobId,
    created: unixSeconds(m.createdAt),
    projectId: m.projectId,
  };
}

function fromCheckpointRow({ ckpt, baseModel }: { ckpt: CheckpointRow; baseModel: string }): TunedModel {
  return {
    id: ckpt.modelName,
    kind: "checkpoint",
    baseModel,
    adapterBlobId: ckpt.adapterBlobId!,
    jobId: ckpt.jobId,
    created: unixSeconds(ckpt.createdAt),
    projectId: ckpt.projectId,
  };
}

/**
 * This project's checkpoints that still hold an adapter (older ones are pruned), with their base
 * model (the job's own base when it fine-tuned a tuned model).
 */
function servableCheckpoints(q: Queryable, projectId: string, modelName?: string) {
  return q
    .select({
      ckpt: fineTuningCheckpoints,
      baseModel: sql<string>`coalesce(${fineTuningJobs.baseModel}, ${fineTuningJobs.model})`,
    })
    .from(fineTuningCheckpoints)
    .innerJoin(fineTuningJobs, eq(fineTuningJobs.id, fineTuningCheckpoints.jobId))
    .where(
      and(
        eq(fineTuningCheckpoints.projectId, projectId),
        isNotNull(fineTuningCheckpoints.adapterBlobId),
        modelName === undefined ? undefined : eq(fineTuningCheckpoints.modelName, modelName),
      ),
    );
}

export async function listTunedModels(q: Queryable, projectId: string): Promise<TunedModel[]> {
  const models = await q
    .select()
    .from(fineTunedModels)
    .where(eq(fineTunedModels.projectId, projectId))
    .orderBy(asc(fineTunedModels.createdAt));
  const checkpoints = await servableCheckpoints(q, projectId).orderBy(
    asc(fineTuningCheckpoints.createdAt),
    asc(fineTuningCheckpoints.stepNumber),
  );
  return [...models.map(fromModelRow), ...checkpoints.map(fromCheckpointRow)];
}

/** A tuned model or checkpoint of this project, or null (another project's is null too). */
export async function findTunedModel(
  q: Queryable,
  projectId: string,
  id: string,
): Promise<TunedModel | null> {
  if (!isTunedModelId(id)) return null;
  const [m] = await q
    .select()
    .from(fineTunedModels)
    .where(and(eq(fineTunedModels.id, id), eq(fineTunedModels.projectId, projectId)));
  if (m) return fromModelRow(m);
  const [c] = await servableCheckpoints(q, projectId, id);
  return c ? fromCheckpointRow(c) : null;
}

/** Deletes a tuned model (not a checkpoint) and its adapter bytes; false when there is none. */
export async function deleteTunedModel(db: Database, projectId: string, id: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [gone] = await tx
      .delete(fineTunedModels)
      .where(and(eq(fineTunedModels.id, id), eq(fineTunedModels.projectId, projectId)))
      .returning();
    if (!gone) return false;
    await deleteBlob(tx, gone.adapterBlobId);
    return true;
  });
}

export type NewTunedModel = Omit<typeof fineTunedModels.$inferInsert, "createdAt">;

/** Called by the transaction that marks the job succeeded (job-state-machine.ts). */
export async function insertTunedModel(q: Queryable, model: NewTunedModel): Promise<void> {
  await q.insert(fineTunedModels).values(model);
}
