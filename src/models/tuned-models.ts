// Tuned models and their checkpoints as /v1/models entries, visible to their project only.
// A tuned model is its base model plus an adapter archive (src/fine-tuning/adapter-archive.ts)
// in the blob store; chat completions resolve any model id with findTunedModel.
//
//   const tuned = await findTunedModel(db, projectId, "ft:tiny-chatml:proj_…::ftjob-…");
//   // { id, baseModel, adapterBlobId, jobId, kind: "model" | "checkpoint", created }
//   const entries = readTarArchive(await readAll(readBlob(database, tuned.adapterBlobId)));
import { and, asc, eq, isNotNull } from "drizzle-orm";
import type { Queryable } from "../blobs/blob-store.js";
import { deleteBlob } from "../blobs/blob-store.js";
import type { Database } from "../db/client.js";
import { fineTunedModels, fineTuningCheckpoints, fineTuningJobs } from "../db/schema.js";
import { unixSeconds } from "../http/pagination.js";
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

export async function listTunedModels(q: Queryable, projectId: string): Promise<TunedModel[]> {
  const models = await q
    .select()
    .from(fineTunedModels)
    .where(eq(fineTunedModels.projectId, projectId))
    .orderBy(asc(fineTunedModels.createdAt));
  const checkpoints = await q
    .select({ ckpt: fineTuningCheckpoints, baseModel: fineTuningJobs.model })
    .from(fineTuningCheckpoints)
    .innerJoin(fineTuningJobs, eq(fineTuningJobs.id, fineTuningCheckpoints.jobId))
    .where(and(eq(fineTuningCheckpoints.projectId, projectId), isNotNull(fineTuningCheckpoints.adapterBlobId)))
    .orderBy(asc(fineTuningCheckpoints.createdAt), asc(fineTuningCheckpoints.stepNumber));
  return [
    ...models.map(
      (m): TunedModel => ({
        id: m.id,
        kind: "model",
        baseModel: m.baseModel,
        adapterBlobId: m.adapterBlobId,
        jobId: m.jobId,
        created: unixSeconds(m.createdAt),
        projectId: m.projectId,
      }),
    ),
    ...checkpoints.map(
      ({ ckpt, baseModel }): TunedModel => ({
        id: ckpt.modelName,
        kind: "checkpoint",
        baseModel,
        adapterBlobId: ckpt.adapterBlobId!,
        jobId: ckpt.jobId,
        created: unixSeconds(ckpt.createdAt),
        projectId: ckpt.projectId,
      }),
    ),
  ];
}

/** A tuned model or checkpoint of this project, or null (another project's is null too). */
export async function findTunedModel(q: Queryable, projectId: string, id: string): Promise<TunedModel | null> {
  if (!isTunedModelId(id)) return null;
  const [m] = await q
    .select()
    .from(fineTunedModels)
    .where(and(eq(fineTunedModels.id, id), eq(fineTunedModels.projectId, projectId)));
  if (m) {
    return {
      id: m.id,
      kind: "model",
      baseModel: m.baseModel,
      adapterBlobId: m.adapterBlobId,
      jobId: m.jobId,
      created: unixSeconds(m.createdAt),
      projectId,
    };
  }
  const [c] = await q
    .select({ ckpt: fineTuningCheckpoints, baseModel: fineTuningJobs.model })
    .from(fineTuningCheckpoints)
    .innerJoin(fineTuningJobs, eq(fineTuningJobs.id, fineTuningCheckpoints.jobId))
    .where(
      and(
        eq(fineTuningCheckpoints.modelName, id),
        eq(fineTuningCheckpoints.projectId, projectId),
        isNotNull(fineTuningCheckpoints.adapterBlobId),
      ),
    );
  if (!c) return null;
  return {
    id,
    kind: "checkpoint",
    baseModel: c.baseModel,
    adapterBlobId: c.ckpt.adapterBlobId!,
    jobId: c.ckpt.jobId,
    created: unixSeconds(c.ckpt.createdAt),
    projectId,
  };
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
