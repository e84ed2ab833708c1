// Rows ↔ OpenAI's objects: FineTuningJob, FineTuningJobEvent, FineTuningJobCheckpoint. Every
// required-but-nullable field is present (the SDK and typed clients rely on it).

import type { components } from "../../contract/openapi-types.js";
import type { fineTuningCheckpoints, fineTuningJobEvents, fineTuningJobs } from "../db/schema.js";
import { unixSeconds } from "../unix-seconds.js";
import { type JobMethod, methodHyperparameters } from "./job-spec.js";

export type JobRow = typeof fineTuningJobs.$inferSelect;
export type EventRow = typeof fineTuningJobEvents.$inferSelect;
export type CheckpointRow = typeof fineTuningCheckpoints.$inferSelect;

type Schemas = components["schemas"];

// The objects' shapes are the contract's (openapi/openapi.yaml → src/contract/openapi-types.ts).
export type FineTuningJobObject = Schemas["FineTuningJob"];
/** Every event carries `type` and `data` (null for plain messages), though the schema marks them optional. */
export type FineTuningJobEventObject = Required<Schemas["FineTuningJobEvent"]>;
export type FineTuningJobCheckpointObject = Schemas["FineTuningJobCheckpoint"];
export type JobError = Schemas["FineTuningJobError"];
export type JobStatus = FineTuningJobObject["status"];

export const JOB_STATUSES = [
  "validating_files",
  "queued",
  "running",
  "paused",
  "succeeded",
  "failed",
  "cancelled",
] as const satisfies readonly JobStatus[];
export const TERMINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "cancelled"];

export function toJobObject(row: JobRow): FineTuningJobObject {
  const method = row.method as JobMethod;
  const hp = methodHyperparameters(method);
  return {
    id: row.id,
    object: "fine_tuning.job",
    created_at: unixSeconds(row.createdAt),
    model: row.model,
    organization_id: row.projectId,
    status: row.status as JobStatus,
    training_file: row.trainingFile,
    validation_file: row.validationFile,
    fine_tuned_model: row.fineTunedModel,
    finished_at: row.finishedAt ? unixSeconds(row.finishedAt) : null,
    trained_tokens: row.trainedTokens,
    result_files: row.resultFiles as string[],
    hyperparameters: {
      batch_size: hp.batch_size ?? "auto",
      learning_rate_multiplier: hp.learning_rate_multiplier ?? "auto",
      n_epochs: hp.n_epochs ?? "auto",
    },
    seed: row.seed,
    error: (row.error as JobError | null) ?? null,
    estimated_finish: row.estimatedFinish ? unixSeconds(row.estimatedFinish) : null,
    integrations: (row.integrations as Record<string, unknown>[] | null) ?? null,
    method,
    metadata: (row.metadata as Record<string, string> | null) ?? null,
    suffix: row.suffix,
  };
}

export function toEventObject(row: EventRow): FineTuningJobEventObject {
  return {
    id: row.id,
    object: "fine_tuning.job.event",
    created_at: unixSeconds(row.createdAt),
    level: row.level as FineTuningJobEventObject["level"],
    message: row.message,
    type: row.type as FineTuningJobEventObject["type"],
    data: (row.data as Record<string, unknown> | null) ?? null,
  };
}

export function toCheckpointObject(row: CheckpointRow): FineTuningJobCheckpointObject {
  return {
    id: row.id,
    object: "fine_tuning.job.checkpoint",
    created_at: unixSeconds(row.createdAt),
    fine_tuned_model_checkpoint: row.modelName,
    fine_tuning_job_id: row.jobId,
    step_number: row.stepNumber,
    metrics: row.metrics as Record<string, number>,
  };
}
