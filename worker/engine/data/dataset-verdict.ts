// The verdict on a tokenized (or upload-summarised) data file: null when a job can train on
// it, else the job's `error` in OpenAI's shape ({code, message, param}). Pure, so the worker
// (which fails the job with it), the api's check of a new job's files and a job's preflight all
// give the same words.
import type { DatasetStats } from "./build-dataset.js";

export const MIN_TRAINING_EXAMPLES = 10;

export interface DataError {
  code: string;
  message: string;
  param: string;
}

export type DataFileParam = "training_file" | "validation_file";

/** The counts a verdict needs: the tokenized dataset's stats, or an upload summary's. */
export type DataCounts = Pick<DatasetStats, "examples" | "invalid" | "dropped" | "errors">;

export function lineList(counts: DataCounts, kind: "invalid" | "dropped"): string {
  const wanted = counts.errors.filter((e) => (e.code === "truncated_away") === (kind === "dropped"));
  const shown = wanted.slice(0, 5).map((e) => `line ${e.line}: ${e.message.replace(/^line \d+: /, "")}`);
  const more = (kind === "invalid" ? counts.invalid : counts.dropped) - shown.length;
  return shown.join("; ") + (more > 0 ? `; and ${more} more` : "");
}

/** null when the data can be trained on. */
export function datasetError(
  counts: DataCounts,
  param: DataFileParam,
  maxSeqLength: number,
): DataError | null {
  const which = param === "training_file" ? "Training" : "Validation";
  if (counts.invalid > 0) {
    return {
      code: param === "training_file" ? "invalid_training_file" : "invalid_validation_file",
      message: `${which} file has ${counts.invalid} invalid example(s): ${lineList(counts, "invalid")}`,
      param,
    };
  }
  if (param === "training_file" && counts.examples < MIN_TRAINING_EXAMPLES) {
    const dropped =
      counts.dropped > 0
        ? ` (${counts.dropped} example(s) had no trainable token left after truncation to max_seq_length ${maxSeqLength}: ${lineList(counts, "dropped")})`
        : "";
    return {
      code: counts.dropped > 0 && counts.examples === 0 ? "invalid_training_file" : "invalid_n_examples",
      message: `Training file has ${counts.examples} example(s), but must have at least ${MIN_TRAINING_EXAMPLES} examples${dropped}`,
      param,
    };
  }
  if (param === "validation_file" && counts.examples === 0) {
    return { code: "invalid_validation_file", message: "Validation file has no usable example", param };
  }
  return null;
}
