// The api's validation of a new job's files, run right after POST /v1/fine_tuning/jobs has
// answered `validating_files` (OpenAI's behaviour): the verdict comes from what the upload
// already recorded about each file (its validation summary: format, example counts, invalid
// lines), so nothing is tokenized here. Problems fail the job with the same `error` the worker
// would give (worker/engine/data/dataset-problems.ts); clean files queue it and wake an idle worker. The
// worker still tokenizes, and its full check (truncation, nothing trainable) still fails the
// job when it must.
//
// Each outcome is one transition of the state machine (queue or reject, allowed only from
// `validating_files` with no worker holding the job): a job cancelled or paused meanwhile, or
// already taken by a worker's fallback claim, is left alone.

import {
  type DataCounts,
  type DataError,
  type DataFileParam,
  datasetError,
  formatError,
  missingFileError,
} from "../../../worker/engine/data/dataset-problems.js";
import type { JsonlSummary } from "../../../worker/engine/data/jsonl-validator.js";
import { resolveHyperparameters } from "../../../worker/engine/train/hyperparameters.js";
import type { Database } from "../../store/db/client.js";
import { findFile } from "../../store/files/file-repository.js";
import type { JobRow } from "../../store/jobs/job-objects.js";
import { type JobMethod, methodHyperparameters } from "../../store/jobs/job-spec.js";
import { queueValidatedJob, rejectJobFiles } from "../../store/jobs/job-state-machine.js";

export type FilesVerdict = "queued" | "failed" | "left_to_worker" | "unchanged";

/** An upload summary as the counts the verdict reads (nothing is dropped before tokenizing). */
function summaryCounts(summary: JsonlSummary): DataCounts {
  return {
    examples: summary.valid_examples,
    invalid: summary.invalid_examples,
    dropped: 0,
    errors: summary.errors,
  };
}

/** The first problem of one file; null when it looks trainable; "unknown" when it has no summary. */
async function fileProblem(
  db: Database,
  job: JobRow,
  fileId: string,
  param: DataFileParam,
  maxSeqLength: number,
  methodType: JobMethod["type"],
): Promise<DataError | null | "unknown"> {
  const file = await findFile(db, job.projectId, fileId);
  if (!file) return missingFileError(fileId, param);
  const summary = file.validation as JsonlSummary | null;
  if (!summary) return "unknown";
  return (
    formatError(summary.format, param, methodType) ??
    datasetError(summaryCounts(summary), param, maxSeqLength)
  );
}

/** The job's verdict, written with its events; the job is untouched when it left `validating_files`. */
export async function validateJobFiles(db: Database, job: JobRow): Promise<FilesVerdict> {
  const method = job.method as JobMethod;
  const requested = methodHyperparameters(method);
  const maxSeqLength = requested.max_seq_length ?? resolveHyperparameters(requested, 1).max_seq_length;
  let problem: DataError | null = null;
  const files: [string, DataFileParam][] = [[job.trainingFile, "training_file"]];
  if (job.validationFile) files.push([job.validationFile, "validation_file"]);
  for (const [fileId, param] of files) {
    const found = await fileProblem(db, job, fileId, param, maxSeqLength, method.type);
    // a file stored without a summary: the worker's fallback claim validates it by tokenizing
    if (found === "unknown") return "left_to_worker";
    if (found) {
      problem = found;
      break;
    }
  }
  if (problem) return (await rejectJobFiles(db, job.id, problem)) ? "failed" : "unchanged";
  return (await queueValidatedJob(db, job.id)) ? "queued" : "unchanged";
}
