// Fine-tuning a fine-tuned model: `model` may name a tuned model or checkpoint of the caller's
// project (ft:…, ft:…:ckpt-step-N); another project's is unknown, like any missing model. The new
// job trains on the base model with the parent's adapter merged in.
import { eq } from "drizzle-orm";
import type { Queryable } from "../blobs/blob-store.js";
import { fineTuningJobs } from "../db/schema.js";
import { findTunedModel, isTunedModelId, type TunedModel } from "../models/tuned-models.js";
import { type JobMethod, methodHyperparameters } from "./job-spec.js";

export interface ParentModel extends TunedModel {
  /** the parent was trained with full fine-tuning (its archive is a whole model) */
  fullFinetune: boolean;
}

/** The caller's tuned model `id` with what a child job needs to know; null when `id` is not one. */
export async function findParentModel(
  q: Queryable,
  projectId: string,
  id: string,
): Promise<ParentModel | null> {
  if (!isTunedModelId(id)) return null;
  const tuned = await findTunedModel(q, projectId, id);
  if (!tuned) return null;
  const [job] = await q
    .select({ method: fineTuningJobs.method })
    .from(fineTuningJobs)
    .where(eq(fineTuningJobs.id, tuned.jobId));
  const fullFinetune = job ? methodHyperparameters(job.method as JobMethod).full_finetune === true : false;
  return { ...tuned, fullFinetune };
}
