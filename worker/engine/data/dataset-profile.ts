// A training (or validation) file as the trainer will see it, for a job's preflight: the very
// buildDataset run the worker makes (same options, same rows), observed example by example for
// what the summary stats do not keep: per-example token counts, trained tokens lost to
// truncation, examples whose end-of-turn token is never trained, examples with no trained
// assistant turn, a fingerprint of each example (to find the same example in two files), and the
// mask preview of the first examples.

import { createHash } from "node:crypto";
import type { ChatTemplate } from "../hf/chat-template.js";
import type { HfTokenizer } from "../hf/tokenizer.js";
import { buildDataset, type DatasetOptions, type EncodedExample, type SftDataset } from "./build-dataset.js";
import type { Example } from "./example.js";
import { isScored, type MaskSegment, maskSegments } from "./mask-preview.js";
import { countScoredLabels } from "./truncate-sequence.js";

export interface ExamplePreview {
  line: number;
  /** false: the example is dropped (nothing trainable within max_seq_length); shown uncut */
  kept: boolean;
  truncated: boolean;
  segments: MaskSegment[];
}

/** Lines of one kind of finding, with a count of all of them (lines holds the first few). */
export interface LineFinding {
  count: number;
  lines: number[];
}

export interface DatasetProfile {
  dataset: SftDataset;
  /** tokens of each kept example as trained (after truncation) */
  exampleTokens: { min: number; median: number; max: number } | null;
  /** the longest example before truncation (tokens) */
  longestExample: number;
  /** kept examples whose cut removed trained tokens; `tokens` = trained tokens lost in all */
  truncatedTrained: LineFinding & { tokens: number };
  /** kept examples none of whose trained tokens is an end-of-turn/eos token (before truncation) */
  stopNeverTrained: LineFinding;
  /** chat examples whose assistant turns all have weight 0 (the validator refuses them) */
  allWeightsZero: LineFinding;
  /** lines whose example appeared on an earlier line of the same file */
  duplicates: LineFinding;
  /** fingerprint of each encoded example → its first line */
  fingerprints: Map<string, number>;
  previews: ExamplePreview[];
}

/** validateExample's code for a chat example whose assistant turns all have weight 0 */
const ALL_WEIGHTS_ZERO = "example_missing_trainable_assistant_message";

export interface ProfileOptions extends Omit<DatasetOptions, "onExample" | "maxErrors"> {
  /** how many examples to preview (the first ones that encoded) */
  previewExamples: number;
  /** lines kept per finding (all are counted); default 10 */
  maxLines?: number;
}

/** A key for "the same example": its parsed content, independent of key order and whitespace. */
function fingerprint(example: Example): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === "object"
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  return createHash("sha256")
    .update(JSON.stringify(canonical(example.example)))
    .digest("base64url");
}

function median(sorted: readonly number[]): number {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2] : Math.round((sorted[n / 2 - 1] + sorted[n / 2]) / 2);
}

export function profileDataset(
  lines: Iterable<string>,
  tokenizer: HfTokenizer,
  template: ChatTemplate,
  opts: ProfileOptions,
): DatasetProfile {
  const maxLines = opts.maxLines ?? 10;
  const finding = (): LineFinding => ({ count: 0, lines: [] });
  const note = (f: LineFinding, line: number) => {
    f.count++;
    if (f.lines.length < maxLines) f.lines.push(line);
  };
  const profile: Omit<DatasetProfile, "dataset" | "exampleTokens"> = {
    longestExample: 0,
    truncatedTrained: { ...finding(), tokens: 0 },
    stopNeverTrained: finding(),
    allWeightsZero: finding(),
    duplicates: finding(),
    fingerprints: new Map(),
    previews: [],
  };
  const tokens: number[] = [];
  const onExample = ({ line, example, encoded, cut }: EncodedExample) => {
    const key = fingerprint(example);
    if (profile.fingerprints.has(key)) note(profile.duplicates, line);
    else profile.fingerprints.set(key, line);
    profile.longestExample = Math.max(profile.longestExample, encoded.inputIds.length);
    if (profile.previews.length < opts.previewExamples) {
      const shown = cut ? cut.sequence : encoded;
      profile.previews.push({
        line,
        kept: cut !== null,
        truncated: cut?.truncated ?? false,
        segments: maskSegments(shown, tokenizer),
      });
    }
    if (!cut) return;
    tokens.push(cut.sequence.inputIds.length);
    const before = countScoredLabels(encoded.labels);
    if (cut.trainedTokens < before) {
      note(profile.truncatedTrained, line);
      profile.truncatedTrained.tokens += before - cut.trainedTokens;
    }
    let stopTrained = false;
    for (let i = 0; i < encoded.inputIds.length && !stopTrained; i++) {
      stopTrained = isScored(encoded.labels, i) && tokenizer.stopIds.has(encoded.inputIds[i]);
    }
    if (!stopTrained) note(profile.stopNeverTrained, line);
  };
  // every problem is kept here (the caller shows the first few) so findings can be counted from them
  const dataset = buildDataset(lines, tokenizer, template, {
    ...opts,
    maxErrors: Number.MAX_SAFE_INTEGER,
    onExample,
  });
  for (const e of dataset.stats.errors) {
    if (e.code === ALL_WEIGHTS_ZERO) note(profile.allWeightsZero, e.line);
  }
  tokens.sort((a, b) => a - b);
  const exampleTokens = tokens.length
    ? { min: tokens[0], median: median(tokens), max: tokens[tokens.length - 1] }
    : null;
  return { dataset, exampleTokens, ...profile };
}
