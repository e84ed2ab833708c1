// What makes a training (or validation) file unusable once tokenized, as the job's `error`
// (OpenAI's shape: {code, message, param}), and what only deserves a warning event.
import type { DatasetStats } from "./engine/data/build-dataset.js";

export const MIN_TRAINING_EXAMPLES = 10;

export interface DataError {
  code: string;
  message: string;
  param: string;
}

function lineList(stats: DatasetStats, kind: "invalid" | "dropped"): string {
  const wanted = stats.errors.filter((e) => (e.code === "truncated_away") === (kind === "dropped"));
  const shown = wanted.slice(0, 5).map((e) => `line ${e.line}: ${e.message.replace(/^line \d+: /, "")}`);
  const more = (kind === "invalid" ? stats.invalid : stats.dropped) - shown.length;
  return shown.join("; ") + (more > 0 ? `; and ${more} more` : "");
}

/** null when the data can be trained on. `param` is training_file or validation_file. */
export function datasetError(stats: DatasetStats, param: "training_file" | "validation_file", maxSeqLength: number): DataError | null {
  const which = param === "training_file" ? "Training" : "Validation";
  if (stats.invalid > 0) {
    return {
      code: param === "training_file" ? "invalid_training_file" : "invalid_validation_file",
      message: `${which} file has ${stats.invalid} invalid example(s): ${lineList(stats, "invalid")}`,
      param,
    };
  }
  if (param === "training_file" && stats.examples < MIN_TRAINING_EXAMPLES) {
    const dropped =
      stats.dropped > 0
        ? ` (${stats.dropped} example(s) had no trainable token left after truncation to max_seq_length ${maxSeqLength}: ${lineList(stats, "dropped")})`
        : "";
    return {
      code: stats.dropped > 0 && stats.examples === 0 ? "invalid_training_file" : "invalid_n_examples",
      message: `Training file has ${stats.examples} example(s), but must have at least ${MIN_TRAINING_EXAMPLES} examples${dropped}`,
      param,
    };
  }
  if (param === "validation_file" && stats.examples === 0) {
    return { code: "invalid_validation_file", message: "Validation file has no usable example", param };
  }
  return null;
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
