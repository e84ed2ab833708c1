// Rows ↔ OpenAI's objects: FineTuningJob, FineTuningJobEvent, FineTuningJobCheckpoint. Every
// required-but-nullable field is present (the SDK and typed clients rely on it).
import type { fineTuningCheckpoints, fineTuningJobEvents, fineTuningJobs } from "../db/schema.js";
import { unixSeconds } from "../http/pagination.js";
import type { JobMethod } from "./create-job-request.js";

export type JobRow = typeof fineTuningJobs.$inferSelect;
export type EventRow = typeof fineTuningJobEvents.$inferSelect;
export type CheckpointRow = typeof fineTuningCheckpoints.$inferSelect;

export const JOB_STATUSES = ["validating_files", "queued", "running", "paused", "succeeded", "failed", "cancelled"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "cancelled"];

export interface JobError {
  code: string;
  message: string;
  param: string | null;
}

export interface FineTuningJobObject {
  id: string;
  object: "fine_tuning.job";
  created_at: number;
  model: string;
  organization_id: string;
  status: JobStatus;
  training_file: string;
  validation_file: string | null;
  fine_tuned_model: string | null;
  finished_at: number | null;
  trained_tokens: number | null;
  result_files: string[];
  hyperparameters: {
    batch_size: number | "auto";
    learning_rate_multiplier: number | "auto";
    n_epochs: number | "auto";
  };
  seed: number;
  error: JobError | null;
  estimated_finish: number | null;
  integrations: Record<string, unknown>[] | null;
  method: JobMethod;
  metadata: Record<string, string> | null;
  suffix: string | null;
}

export function toJobObject(row: JobRow): FineTuningJobObject {
  const method = row.method as JobMethod;
  const hp = method.supervised.hyperparameters;
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

export interface FineTuningJobEventObject {
  id: string;
  object: "fine_tuning.job.event";
  created_at: number;
  level: "info" | "warn" | "error";
  message: string;
  type: "message" | "metrics";
  data: Record<string, unknown> | null;
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

export interface FineTuningJobCheckpointObject {
  id: string;
  object: "fine_tuning.job.checkpoint";
  created_at: number;
  fine_tuned_model_checkpoint: string;
  fine_tuning_job_id: string;
  step_number: number;
  metrics: Record<string, number>;
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

// The objects above must fit the contract (openapi/openapi.yaml → src/http/openapi-types.ts):
// these assignments fail to compile when a field drifts from the schema.
type Schemas = import("../http/openapi-types.js").components["schemas"];
export const fitsContract = (o: {
  job: FineTuningJobObject;
  event: FineTuningJobEventObject;
  checkpoint: FineTuningJobCheckpointObject;
}): [Schemas["FineTuningJob"], Schemas["FineTuningJobEvent"], Schemas["FineTuningJobCheckpoint"]] => [o.job, o.event, o.checkpoint];
