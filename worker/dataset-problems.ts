// What makes a training (or validation) file unusable, as the job's `error` (OpenAI's shape:
// {code, message, param}), and what only deserves a warning event. Two callers, one wording:
// the api checks a new job's files from their upload validation summary (no tokenizing;
// src/fine-tuning/validate-job-files.ts), the worker checks the tokenized dataset.
import type { DatasetStats } from "./engine/data/build-dataset.js";

export const MIN_TRAINING_EXAMPLES = 10;

export interface DataError {
  code: string;
  message: string;
  param: string;
}

export type DataFileParam = "training_file" | "validation_file";

/** The counts a verdict needs: the tokenized dataset's stats, or an upload summary's. */
export type DataCounts = Pick<DatasetStats, "examples" | "invalid" | "dropped" | "errors">;

function lineList(counts: DataCounts, kind: "invalid" | "dropped"): string {
  const wanted = counts.errors.filter((e) => (e.code === "truncated_away") === (kind === "dropped"));
  const shown = wanted.slice(0, 5).map((e) => `line ${e.line}: ${e.message.replace(/^line \d+: /, "")}`);
  const more = (kind === "invalid" ? counts.invalid : counts.dropped) - shown.length;
  return shown.join("; ") + (more > 0 ? `; and ${more} more` : "");
}

/** null when the data can be trained on. */
export function datasetError(counts: DataCounts, param: DataFileParam, maxSeqLength: number): DataError | null {
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
  if (stats.truncated > 0) out.push(`${stats.truncated} ${which} example(s) truncated to max_seq_length ${maxSeqLength}`);
  for (const w of stats.warnings.slice(0, 5)) out.push(`${which} file: ${w}`);
  return out;
}
