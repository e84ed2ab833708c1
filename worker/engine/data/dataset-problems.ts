// What makes a training (or validation) file unusable, as the job's `error` (OpenAI's shape:
// {code, message, param}), and what only deserves a warning event. Two callers, one wording:
// the api checks a new job's files from their upload validation summary (no tokenizing;
// src/http/fine-tuning/validate-job-files.ts), the worker checks the tokenized dataset.
import type { DatasetStats } from "./build-dataset.js";

export {
  type DataCounts,
  type DataError,
  type DataFileParam,
  datasetError,
  lineList,
  MIN_TRAINING_EXAMPLES,
} from "./dataset-verdict.js";

import { type DataError, type DataFileParam, lineList } from "./dataset-verdict.js";

/**
 * A file whose examples are of a format the job's method cannot train: preference pairs in a
 * supervised job, anything else in a DPO job. The worker refuses such lines one by one; the
 * upload summary knows only the file's format, so the api says it for the whole file.
 */
export function formatError(
  format: string | null,
  param: DataFileParam,
  method: "supervised" | "dpo" = "supervised",
): DataError | null {
  const which = param === "training_file" ? "Training" : "Validation";
  const code = param === "training_file" ? "invalid_training_file" : "invalid_validation_file";
  if (method === "dpo") {
    if (format === null || format === "preference") return null;
    const what = format === "mixed" ? "examples that are not all preference pairs" : `${format} examples`;
    return {
      code,
      message: `${which} file holds ${what}; the DPO method needs preference examples ({"input","preferred_output","non_preferred_output"})`,
      param,
    };
  }
  if (format !== "preference") return null;
  return {
    code,
    message: `${which} file holds preference examples, which train with the DPO method, not supervised fine-tuning`,
    param,
  };
}

/** The one format a tokenized dataset's valid lines share, or null (none, or mixed). */
export function soleFormat(formats: Record<string, number>): string | null {
  const present = Object.keys(formats).filter((f) => formats[f] > 0);
  return present.length === 1 ? present[0] : null;
}

/** The file was deleted (or expired) after the job was created. */
export function missingFileError(fileId: string, param: DataFileParam): DataError {
  return { code: `invalid_${param}`, message: `File ${fileId} no longer exists`, param };
}

/** Warnings for the job's events: dropped and truncated examples, and the engine's own. */
export function datasetWarnings(stats: DatasetStats, which: string, maxSeqLength: number): string[] {
  const out: string[] = [];
  if (stats.dropped > 0) {
    out.push(
      `${stats.dropped} ${which} example(s) dropped: nothing trainable left after truncation to max_seq_length ${maxSeqLength} (${lineList(stats, "dropped")})`,
    );
  }
  if (stats.truncated > 0)
    out.push(`${stats.truncated} ${which} example(s) truncated to max_seq_length ${maxSeqLength}`);
  for (const w of stats.warnings.slice(0, 5)) out.push(`${which} file: ${w}`);
  return out;
}
