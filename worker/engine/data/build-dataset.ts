// Training data: JSONL lines → token rows ready for the training loop (docs/training.md).
//
// API (for the jobs worker and the training loop)
// -----------------------------------------------
//   const tokenizer = await loadTokenizer(modelFolder);                        // hf/tokenizer.ts
//   const template = resolveChatTemplate(tokenizer.chatTemplate, {             // hf/chat-template.ts
//     specialTokens: tokenizer.specialTokensMap,
//     override: job.chatTemplate,          // optional: a job may bring its own Jinja template
//     now: () => jobCreatedAt,             // optional: fixes strftime_now for reproducible renders
//   });
//   const sft = buildDataset(lines, tokenizer, template, { maxSeqLength: 2048, packing: true });
//   sft.batch   TokenBatch holding every row (packed: rows of ≤ maxSeqLength; padded: one example a
//               row), right-padded to the longest row: train({ train: sft.batch, batchOrder, … })
//   sft.rows    the same rows unpadded (SequenceRow[]), e.g. for collateRows(rows, padId)
//   sft.stats   counts for the job's events: examples kept, invalid, dropped (nothing trainable left
//               after truncation), truncated, trained/total tokens, rows, packing efficiency (real
//               tokens / slots), per-line errors (1-based line numbers, first `maxErrors`), warnings
//   batchOrder(numRows, epoch, seed)  (batch-order.ts): the epoch's row order, seeded per epoch
//
//   const dpo = buildPreferenceDataset(lines, tokenizer, template, { maxSeqLength });
//   dpo.pairs   [{ line, promptIds, chosenIds, chosenLabels, rejectedIds, rejectedLabels }]
//
// Formats (validated with validateExample, so training accepts exactly what the upload accepted):
//   chat               trained assistant turns (weight ≠ 0) + their end-of-turn token are labels
//   prompt_completion  completion + eos are labels
//   text               every token is a label
//   preference         only in buildPreferenceDataset (an SFT job refuses those lines, and vice versa)
//
// Lines are JSONL text lines (a BOM on the first is ignored; blank lines are skipped but counted).
// Label conventions: not shifted (logits at t are scored against labels[t + 1]); the first token of
// every row segment is IGNORE_INDEX.

import type { ChatTemplate } from "../hf/chat-template.js";
import type { HfTokenizer } from "../hf/tokenizer.js";
import type { TokenBatch } from "./batch.js";
import { epochBatches } from "./batch-order.js";
import { type EncodedChat, type EncodedSequence, encodeChat } from "./encode-chat.js";
import { encodePromptCompletion, encodeText } from "./encode-plain.js";
import { type EncodedPreference, encodePreference } from "./encode-preference.js";
import type { Example, ExampleFormat } from "./example.js";
import { packSequences } from "./pack-sequences.js";
import { collateRows, rowFromSequences, type SequenceRow } from "./sequence-row.js";
import { countScoredLabels, type TruncatedSequence, truncateSequence } from "./truncate-sequence.js";
import { type ExampleValidation, validateExample } from "./validate-example.js";

export { batchOrder, epochBatches } from "./batch-order.js";
export { collateRows, realTokenShare, type SequenceRow } from "./sequence-row.js";

export interface LineError {
  /** 1-based line number in the file */
  line: number;
  code: string;
  message: string;
}

export interface DatasetOptions {
  /** tokens per row; longer examples are cut (right side) */
  maxSeqLength: number;
  /** pack examples into rows (first-fit decreasing); default true */
  packing?: boolean;
  /** extra chat-template variables, e.g. { enable_thinking: false } */
  templateKwargs?: Record<string, unknown>;
  /** how many per-line errors to keep (all are counted); default 100 */
  maxErrors?: number;
  /** with batchSize: packingEfficiency is measured over epoch 0's batches as the loop will cut them */
  batchSize?: number;
  seed?: number;
  /**
   * checks on the first N chat examples (default 8): ids decode to the rendered text, and the fast
   * turn search gives the same ids and labels as the per-turn renders (else renders are used throughout)
   */
  verifyExamples?: number;
  /** default validateExample (validate-example.ts) */
  validate?: (value: unknown) => ExampleValidation;
  /** sees every example that encoded, as the rows will hold it (`cut` null: dropped or nothing to train) */
  onExample?: (seen: EncodedExample) => void;
}

/** One encoded example as buildDataset saw it (for reports such as a job's preflight). */
export interface EncodedExample {
  line: number;
  example: Example;
  /** before truncation */
  encoded: EncodedSequence;
  /** after truncation to maxSeqLength; null when the example is not kept */
  cut: TruncatedSequence | null;
}

export interface DatasetStats {
  /** non-blank lines read */
  lines: number;
  /** examples kept */
  examples: number;
  /** lines refused: invalid JSON or example, template failure, nothing to train */
  invalid: number;
  /** valid examples with no trained token left after truncation to maxSeqLength */
  dropped: number;
  /** kept examples that were cut to maxSeqLength */
  truncated: number;
  /** labels that will be scored */
  trainedTokens: number;
  /** real (non-padding) tokens in the rows */
  totalTokens: number;
  rows: number;
  /** real tokens / slots (rows × row length as batched) */
  packingEfficiency: number;
  formats: Record<ExampleFormat, number>;
  /** the first maxErrors problems, by line */
  errors: LineError[];
  /** all problems (invalid + dropped) */
  errorCount: number;
  warnings: string[];
}

export interface SftDataset {
  rows: SequenceRow[];
  /** every row in one TokenBatch, right-padded to the longest row */
  batch: TokenBatch;
  stats: DatasetStats;
}

export interface PreferencePair extends EncodedPreference {
  line: number;
}

export interface PreferenceDataset {
  pairs: PreferencePair[];
  stats: DatasetStats;
}

interface ParsedLine {
  line: number;
  example: Example;
}

class StatsCollector {
  readonly stats: DatasetStats = {
    lines: 0,
    examples: 0,
    invalid: 0,
    dropped: 0,
    truncated: 0,
    trainedTokens: 0,
    totalTokens: 0,
    rows: 0,
    packingEfficiency: 0,
    formats: { chat: 0, preference: 0, prompt_completion: 0, text: 0 },
    errors: [],
    errorCount: 0,
    warnings: [],
  };
  constructor(private readonly maxErrors: number) {}

  problem(line: number, code: string, message: string, kind: "invalid" | "dropped"): void {
    this.stats[kind]++;
    this.stats.errorCount++;
    if (this.stats.errors.length < this.maxErrors) this.stats.errors.push({ line, code, message });
  }
}

/** Parse and validate JSONL lines; problems go to `collector`. */
function* parseLines(
  lines: Iterable<string>,
  collector: StatsCollector,
  validate: (value: unknown) => ExampleValidation,
): Generator<ParsedLine> {
  let line = 0;
  for (let text of lines) {
    line++;
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.trim().length === 0) continue;
    collector.stats.lines++;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err: any) {
      collector.problem(line, "invalid_json", `line ${line} is not JSON: ${err?.message ?? err}`, "invalid");
      continue;
    }
    const result = validate(value);
    if (!result.ok) {
      collector.problem(line, result.code, result.message, "invalid");
      continue;
    }
    collector.stats.formats[result.example.format]++;
    yield { line, example: result.example };
  }
}

/** Checks on the first few chat examples; `fastSpans` is turned off if the fast span search disagrees. */
interface ChatChecks {
  remaining: number;
  fastSpans: boolean;
}

const sameIds = (a: Int32Array, b: Int32Array) => a.length === b.length && a.every((v, i) => v === b[i]);

function encodeCheckedChat(
  parsed: ParsedLine & { example: { format: "chat" } },
  tokenizer: HfTokenizer,
  template: ChatTemplate,
  opts: DatasetOptions,
  checks: ChatChecks,
  warnings: string[],
): EncodedChat {
  const { messages, tools } = parsed.example.example;
  const templateKwargs = opts.templateKwargs;
  if (checks.remaining <= 0) {
    return encodeChat(messages, tools, tokenizer, template, {
      templateKwargs,
      spanSearch: checks.fastSpans ? "auto" : "render",
    });
  }
  checks.remaining--;
  const reference = encodeChat(messages, tools, tokenizer, template, {
    templateKwargs,
    spanSearch: "render",
  });
  if (checks.fastSpans) {
    const fast = encodeChat(messages, tools, tokenizer, template, { templateKwargs, spanSearch: "auto" });
    if (!sameIds(fast.inputIds, reference.inputIds) || !sameIds(fast.labels, reference.labels)) {
      checks.fastSpans = false;
      warnings.push(
        `line ${parsed.line}: the fast turn search disagrees with the template's renders; using renders for every example`,
      );
    }
  }
  if (tokenizer.decode(reference.inputIds) !== reference.text) {
    warnings.push(
      `line ${parsed.line}: the token ids do not decode back to the rendered text (the tokenizer normalises text)`,
    );
  }
  return reference;
}

function encodeSft(
  parsed: ParsedLine,
  tokenizer: HfTokenizer,
  template: ChatTemplate,
  opts: DatasetOptions,
  checks: ChatChecks,
  warnings: string[],
): EncodedSequence | { code: string; message: string } {
  const { example } = parsed;
  try {
    switch (example.format) {
      case "chat":
        return encodeCheckedChat(
          parsed as ParsedLine & { example: { format: "chat" } },
          tokenizer,
          template,
          opts,
          checks,
          warnings,
        );
      case "prompt_completion":
        return encodePromptCompletion(example.example.prompt, example.example.completion, tokenizer);
      case "text":
        return encodeText(example.example.text, tokenizer);
      case "preference":
        return {
          code: "unsupported_format",
          message: "preference examples train with the DPO method, not supervised fine-tuning",
        };
    }
  } catch (err: any) {
    return { code: "render_failed", message: String(err?.message ?? err) };
  }
}

/** real tokens / slots, as the training loop will batch the rows */
function measureEfficiency(rows: readonly SequenceRow[], opts: DatasetOptions): number {
  const real = rows.reduce((n, r) => n + r.inputIds.length, 0);
  if (rows.length === 0) return 0;
  let slots = 0;
  if (opts.batchSize) {
    for (const batch of epochBatches(rows.length, opts.batchSize, 0, opts.seed ?? 0)) {
      const longest = batch.reduce((m, i) => Math.max(m, rows[i].inputIds.length), 0);
      slots += batch.length * longest;
    }
  } else {
    const width =
      (opts.packing ?? true) ? opts.maxSeqLength : rows.reduce((m, r) => Math.max(m, r.inputIds.length), 0);
    slots = rows.length * width;
  }
  return real / slots;
}

/** Supervised fine-tuning data: chat, prompt/completion and text lines → rows. */
export function buildDataset(
  lines: Iterable<string>,
  tokenizer: HfTokenizer,
  template: ChatTemplate,
  opts: DatasetOptions,
): SftDataset {
  const collector = new StatsCollector(opts.maxErrors ?? 100);
  const { stats } = collector;
  const kept: EncodedSequence[] = [];
  const checks: ChatChecks = { remaining: opts.verifyExamples ?? 8, fastSpans: true };
  for (const parsed of parseLines(lines, collector, opts.validate ?? validateExample)) {
    const encoded = encodeSft(parsed, tokenizer, template, opts, checks, stats.warnings);
    if ("code" in encoded) {
      collector.problem(parsed.line, encoded.code, `line ${parsed.line}: ${encoded.message}`, "invalid");
      continue;
    }
    if (countScoredLabels(encoded.labels) === 0) {
      opts.onExample?.({ line: parsed.line, example: parsed.example, encoded, cut: null });
      collector.problem(
        parsed.line,
        "no_trainable_tokens",
        `line ${parsed.line}: nothing to train on`,
        "invalid",
      );
      continue;
    }
    const cut = truncateSequence(encoded, opts.maxSeqLength);
    opts.onExample?.({ line: parsed.line, example: parsed.example, encoded, cut });
    if (!cut) {
      collector.problem(
        parsed.line,
        "truncated_away",
        `line ${parsed.line}: no trained token is left within max_seq_length ${opts.maxSeqLength} ` +
          `(the example has ${encoded.inputIds.length} tokens)`,
        "dropped",
      );
      continue;
    }
    if (cut.truncated) stats.truncated++;
    stats.trainedTokens += cut.trainedTokens;
    stats.totalTokens += cut.sequence.inputIds.length;
    kept.push({ inputIds: cut.sequence.inputIds, labels: cut.sequence.labels });
  }
  stats.examples = kept.length;
  const rows =
    (opts.packing ?? true) ? packSequences(kept, opts.maxSeqLength) : kept.map((s) => rowFromSequences([s]));
  stats.rows = rows.length;
  stats.packingEfficiency = measureEfficiency(rows, opts);
  return { rows, batch: collateRows(rows, tokenizer.padId), stats };
}

/**
 * Cut a pair to maxSeqLength, keeping the end of the prompt and the answers, as TRL's keep_end
 * truncation: the prompt loses its start first, down to half the length (or what the answers
 * leave, when that is more); then the answers lose their ends. Null when nothing is left to score.
 */
export function truncatePair(
  pair: EncodedPreference,
  maxLength: number,
): { pair: EncodedPreference; truncated: boolean } | null {
  const prompt = pair.promptIds.length;
  const longest = Math.max(pair.chosenIds.length, pair.rejectedIds.length);
  if (prompt + longest <= maxLength) return { pair, truncated: false };
  const keepPrompt = Math.min(prompt, Math.max(1, maxLength - longest, Math.ceil(maxLength / 2)));
  const room = maxLength - keepPrompt;
  const cut: EncodedPreference = {
    promptIds: pair.promptIds.slice(prompt - keepPrompt),
    chosenIds: pair.chosenIds.slice(0, room),
    chosenLabels: pair.chosenLabels.slice(0, room),
    rejectedIds: pair.rejectedIds.slice(0, room),
    rejectedLabels: pair.rejectedLabels.slice(0, room),
  };
  const scored = (labels: Int32Array) => labels.some((v) => v >= 0);
  if (room < 1 || !scored(cut.chosenLabels) || !scored(cut.rejectedLabels)) return null;
  return { pair: cut, truncated: true };
}

/** Preference (DPO) data: preference lines → prompt / chosen / rejected ids and labels. */
export function buildPreferenceDataset(
  lines: Iterable<string>,
  tokenizer: HfTokenizer,
  template: ChatTemplate,
  opts: DatasetOptions,
): PreferenceDataset {
  const collector = new StatsCollector(opts.maxErrors ?? 100);
  const { stats } = collector;
  const pairs: PreferencePair[] = [];
  for (const { line, example } of parseLines(lines, collector, opts.validate ?? validateExample)) {
    if (example.format !== "preference") {
      collector.problem(
        line,
        "unsupported_format",
        `line ${line}: a ${example.format} example; the DPO method needs preference examples`,
        "invalid",
      );
      continue;
    }
    let encoded: EncodedPreference;
    try {
      encoded = encodePreference(example.example, tokenizer, template, opts.templateKwargs);
    } catch (err: any) {
      collector.problem(line, "render_failed", `line ${line}: ${err?.message ?? err}`, "invalid");
      continue;
    }
    const cut = truncatePair(encoded, opts.maxSeqLength);
    if (!cut) {
      collector.problem(
        line,
        "truncated_away",
        `line ${line}: no answer token is left to train within max_seq_length ${opts.maxSeqLength} ` +
          `(prompt ${encoded.promptIds.length} tokens)`,
        "dropped",
      );
      continue;
    }
    if (cut.truncated) stats.truncated++;
    const p = cut.pair;
    stats.trainedTokens += [p.chosenLabels, p.rejectedLabels].reduce(
      (n, l) => n + l.filter((v) => v >= 0).length,
      0,
    );
    stats.totalTokens += 2 * p.promptIds.length + p.chosenIds.length + p.rejectedIds.length;
    pairs.push({ line, ...p });
  }
  stats.examples = pairs.length;
  stats.rows = 2 * pairs.length;
  return { pairs, stats };
}

/**
 * A DPO batch: rows [chosen_0 … chosen_{n-1}, rejected_0 … rejected_{n-1}], each prompt + answer,
 * right-padded; labels only on the answers. The loss sums log-probabilities over each row's labels.
 */
export function collatePreferencePairs(pairs: readonly EncodedPreference[], padId: number): TokenBatch {
  const row = (prompt: Int32Array, ids: Int32Array, labels: Int32Array) => {
    const promptLabels = new Int32Array(prompt.length).fill(-100);
    const joinIds = new Int32Array(prompt.length + ids.length);
    joinIds.set(prompt);
    joinIds.set(ids, prompt.length);
    const joinLabels = new Int32Array(joinIds.length);
    joinLabels.set(promptLabels);
    joinLabels.set(labels, prompt.length);
    return rowFromSequences([{ inputIds: joinIds, labels: joinLabels }]);
  };
  const rows = [
    ...pairs.map((p) => row(p.promptIds, p.chosenIds, p.chosenLabels)),
    ...pairs.map((p) => row(p.promptIds, p.rejectedIds, p.rejectedLabels)),
  ];
  return collateRows(rows, padId);
}
