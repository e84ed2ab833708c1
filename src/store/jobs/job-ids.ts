// Ids and model names of fine-tuning objects, in OpenAI's forms: ftjob-…, ftevent-…, ftckpt_…,
// and ft:{base}:{project}:{suffix}:{job} for tuned models (…:ckpt-step-N for checkpoints).
import { randomAlphanumeric } from "../ids.js";

export const newJobId = (): string => `ftjob-${randomAlphanumeric(24)}`;
export const newEventId = (): string => `ftevent-${randomAlphanumeric(24)}`;
export const newCheckpointId = (): string => `ftckpt_${randomAlphanumeric(24)}`;

/** The owner segment is the project id: project names are the operator's and may change. */
export function tunedModelName(
  baseModel: string,
  projectId: string,
  suffix: string | null,
  jobId: string,
): string {
  return `ft:${baseModel}:${projectId}:${suffix ?? ""}:${jobId}`;
}

export function checkpointModelName(tunedModel: string, step: number): string {
  return `${tunedModel}:ckpt-step-${step}`;
}
