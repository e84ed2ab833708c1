// POST /v1/fine_tuning/jobs/preflight (our extension): a job-create body checked exactly as
// create checks it, then everything a job would do before its first step, done now and
// reported, with nothing written: the files tokenized by the worker's own pipeline, `auto`
// hyperparameters resolved by the engine's rules (with the rule text), the step count, a
// duration estimate from the engine's measured throughput table, the peak-memory estimate
// against the budget, warnings that name the example and the fix, and a mask preview of the
// first examples built from the encoder's own ids and labels.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type DatasetProfile, profileDataset } from "../../../worker/engine/data/dataset-profile.js";
import { type DataError, datasetError } from "../../../worker/engine/data/dataset-verdict.js";
import { resolveChatTemplate } from "../../../worker/engine/hf/chat-template.js";
import { type ModelConfig, parseModelConfig } from "../../../worker/engine/hf/config.js";
import { type HfTokenizer, loadTokenizer } from "../../../worker/engine/hf/tokenizer.js";
import {
  type AutoRuleParam,
  explainAutoValues,
  type ResolvedHyperparameters,
  resolveHyperparameters,
} from "../../../worker/engine/train/hyperparameters.js";
import {
  estimateTrainingMemory,
  trainingMemoryBudget,
} from "../../../worker/engine/train/memory-estimate.js";
import { countParameters } from "../../../worker/engine/train/parameter-count.js";
import { estimateTrainingDuration } from "../../../worker/engine/train/throughput-table.js";
import { planTraining } from "../../../worker/engine/train/training-plan.js";
import { type WorkerSetup, workerSetupFromEnv } from "../../config.js";
import type { components } from "../../contract/openapi-types.js";
import { readBlobLines } from "../../store/blobs/blob-lines.js";
import { findFile } from "../../store/files/file-repository.js";
import { findBaseModel } from "../../store/models/base-models.js";
import { badRequest } from "../api-error.js";
import type { AppContext } from "../app-context.js";
import { type CreateJobBody, type CreateJobRequest, parseCreateJobRequest } from "./create-job-request.js";

export type PreflightObject = components["schemas"]["FineTuningPreflight"];
type PreflightWarning = components["schemas"]["FineTuningPreflightWarning"];
type PreflightDataFile = components["schemas"]["FineTuningPreflightDataFile"];
type PreflightMemory = components["schemas"]["FineTuningPreflightMemory"];

export const DEFAULT_PREVIEW_EXAMPLES = 5;
export const MAX_PREVIEW_EXAMPLES = 20;
/** problems listed per file (all are counted) */
const MAX_PROBLEMS = 20;

function previewCount(raw: unknown): number {
  if (raw === undefined || raw === null) return DEFAULT_PREVIEW_EXAMPLES;
  if (!(Number.isInteger(raw) && (raw as number) >= 0 && (raw as number) <= MAX_PREVIEW_EXAMPLES)) {
    throw badRequest(
      `'preview_examples' must be an integer from 0 to ${MAX_PREVIEW_EXAMPLES}.`,
      "preview_examples",
      "invalid_value",
    );
  }
  return raw as number;
}

const lineList = (lines: readonly number[], count: number) =>
  `line${lines.length > 1 ? "s" : ""} ${lines.join(", ")}${count > lines.length ? ` and ${count - lines.length} more` : ""}`;

function dataFile(profile: DatasetProfile): PreflightDataFile {
  const s = profile.dataset.stats;
  return {
    examples_read: s.lines,
    examples_kept: s.examples,
    examples_dropped: s.invalid + s.dropped,
    examples_truncated: s.truncated,
    problems: s.errors
      .slice(0, MAX_PROBLEMS)
      .map((e) => ({ line: e.line, code: e.code, message: e.message })),
    tokens: {
      total: s.totalTokens,
      trained: s.trainedTokens,
      per_example: profile.exampleTokens,
    },
    rows: s.rows,
    packing_efficiency: Math.round(s.packingEfficiency * 1e4) / 1e4,
  };
}

interface WarningContext {
  which: "training" | "validation";
  profile: DatasetProfile;
  tokenizer: HfTokenizer;
  hp: ResolvedHyperparameters;
}

/** Warnings about one file, each naming the first line(s) and the fix. */
function fileWarnings({ which, profile, tokenizer, hp }: WarningContext): PreflightWarning[] {
  const out: PreflightWarning[] = [];
  const File = which === "training" ? "Training file" : "Validation file";
  const stops = tokenizer.stopTokens.length ? tokenizer.stopTokens.join(", ") : "none";
  const { stopNeverTrained, allWeightsZero, truncatedTrained, duplicates } = profile;
  if (stopNeverTrained.count > 0) {
    out.push({
      code: "eos_never_trained",
      line: stopNeverTrained.lines[0],
      message:
        `${File}: ${stopNeverTrained.count} example(s) never train an end-of-turn/eos token (${stops}): ` +
        `${lineList(stopNeverTrained.lines, stopNeverTrained.count)}. A model tuned on them does not learn to stop. ` +
        "Fix: use a chat template that closes each assistant turn with the tokenizer's eos or end-of-turn token " +
        "(or add that token to the tokenizer's eos ids in generation_config.json).",
    });
  }
  if (allWeightsZero.count > 0) {
    out.push({
      code: "all_assistant_weights_zero",
      line: allWeightsZero.lines[0],
      message:
        `${File}: in ${allWeightsZero.count} example(s) every assistant turn has weight 0, so nothing in them could be trained ` +
        `and the job refuses them as invalid: ${lineList(allWeightsZero.lines, allWeightsZero.count)}. ` +
        'Fix: set "weight": 1 (or leave weight out) on the assistant turns to learn from.',
    });
  }
  if (truncatedTrained.count > 0) {
    out.push({
      code: "truncation_drops_trained_tokens",
      line: truncatedTrained.lines[0],
      message:
        `${File}: ${truncatedTrained.count} example(s) lose ${truncatedTrained.tokens} trained token(s) to truncation at ` +
        `max_seq_length ${hp.max_seq_length}: ${lineList(truncatedTrained.lines, truncatedTrained.count)}. ` +
        `Fix: raise max_seq_length to ${profile.longestExample} (the longest example), or shorten or split these examples.`,
    });
  }
  const dropped = profile.dataset.stats.errors.filter((e) => e.code === "truncated_away");
  if (profile.dataset.stats.dropped > 0) {
    out.push({
      code: "examples_dropped_by_truncation",
      line: dropped[0]?.line ?? null,
      message:
        `${File}: ${profile.dataset.stats.dropped} example(s) have no trained token within max_seq_length ${hp.max_seq_length} and are dropped: ` +
        `${lineList(dropped.map((e) => e.line).slice(0, 10), profile.dataset.stats.dropped)}. ` +
        `Fix: raise max_seq_length (the longest example has ${profile.longestExample} tokens) or shorten their prompts.`,
    });
  }
  if (duplicates.count > 0) {
    out.push({
      code: "duplicate_examples",
      line: duplicates.lines[0],
      message:
        `${File}: ${duplicates.count} example(s) repeat an earlier line: ${lineList(duplicates.lines, duplicates.count)}. ` +
        "Repeats are trained once per copy per epoch. Fix: remove them unless the extra weight is intended.",
    });
  }
  for (const w of profile.dataset.stats.warnings.slice(0, 5)) {
    const m = /^line (\d+): /.exec(w);
    out.push({ code: "tokenization_check", line: m ? Number(m[1]) : null, message: `${File}: ${w}` });
  }
  return out;
}

function overlapWarning(train: DatasetProfile, valid: DatasetProfile): PreflightWarning | null {
  const pairs: [number, number][] = [];
  let count = 0;
  for (const [key, validLine] of valid.fingerprints) {
    const trainLine = train.fingerprints.get(key);
    if (trainLine === undefined) continue;
    count++;
    if (pairs.length < 10) pairs.push([validLine, trainLine]);
  }
  if (count === 0) return null;
  pairs.sort((a, b) => a[0] - b[0]);
  return {
    code: "validation_overlaps_training",
    line: pairs[0][0],
    message:
      `The validation file shares ${count} example(s) with the training file (validation line → training line: ` +
      `${pairs.map(([v, t]) => `${v} → ${t}`).join(", ")}${count > pairs.length ? ", …" : ""}), so the validation loss ` +
      "overstates how well the model generalises. Fix: remove those examples from one of the files.",
  };
}

function jobFailure(error: DataError): PreflightWarning {
  return {
    code: "job_would_fail",
    line: null,
    message: `A job with this body would fail (${error.code}, ${error.param}): ${error.message}`,
  };
}

/**
 * The estimate workers refuse a job with, for the pass they size it by: min(WORKER_MICRO_BATCH,
 * batch_size) rows of the longest row (training or validation).
 */
function memoryEstimate(
  config: ModelConfig,
  hp: ResolvedHyperparameters,
  longestRow: number,
  setup: WorkerSetup,
): PreflightMemory {
  const budget = trainingMemoryBudget(setup.backend, setup.memoryBudget ?? null);
  const estimate = estimateTrainingMemory({
    config,
    method: hp.full_finetune ? "full" : "lora",
    loraRank: hp.lora_rank,
    loraTargets: hp.target_modules,
    loraDropout: hp.full_finetune ? 0 : hp.lora_dropout,
    microBatch: Math.min(setup.microBatchSize, hp.batch_size),
    seqLen: Math.max(1, longestRow),
    backend: setup.backend,
    budgetBytes: budget.bytes,
  });
  return {
    estimated_peak_bytes: estimate.totalBytes,
    budget_bytes: budget.bytes,
    budget_source: budget.source,
    backend: setup.backend,
    fits: estimate.totalBytes <= budget.bytes,
    gradient_checkpointing: estimate.gradientCheckpointing,
    breakdown: estimate.breakdown,
  };
}

async function readLines(
  ctx: AppContext,
  projectId: string,
  fileId: string,
  param: string,
): Promise<string[]> {
  const file = await findFile(ctx.database.db, projectId, fileId);
  // checkCreate has seen it; a delete in between is the same answer as a missing file
  if (!file) throw badRequest(`Invalid file id '${fileId}': no such file.`, param, "invalid_file_id");
  return readBlobLines(ctx.database, file.blobId);
}

export async function runPreflight(
  ctx: AppContext,
  projectId: string,
  body: CreateJobBody & { preview_examples?: unknown },
  checkCreate: (ctx: AppContext, projectId: string, req: CreateJobRequest) => Promise<string>,
  setup: WorkerSetup = workerSetupFromEnv(),
): Promise<PreflightObject> {
  // `preview_examples` is checked here too: `POST /fine_tuning/jobs?dry_run=true` validates its
  // body with the create schema, which does not know it.
  const { preview_examples, ...createBody } = body;
  const req = parseCreateJobRequest(createBody);
  const previewExamples = previewCount(preview_examples);
  if (req.method.type !== "supervised") {
    throw badRequest(
      "Preflight covers supervised jobs; a 'dpo' job's preference pairs are checked when the job starts.",
      "method.type",
      "unsupported_method",
    );
  }
  const baseModel = await checkCreate(ctx, projectId, req);
  const base = (await findBaseModel(ctx.config, baseModel))!;
  const config = parseModelConfig(JSON.parse(await readFile(join(base.dir, "config.json"), "utf8")));
  const tokenizer = await loadTokenizer(base.dir);
  const template = resolveChatTemplate(tokenizer.chatTemplate, {
    specialTokens: tokenizer.specialTokensMap,
    now: () => new Date(),
  });
  const requested = req.method.supervised.hyperparameters;
  const maxSeqLength = requested.max_seq_length ?? resolveHyperparameters(requested, 1).max_seq_length;
  const datasetOptions = { maxSeqLength, packing: requested.packing ?? true, seed: req.seed };

  const train = profileDataset(
    await readLines(ctx, projectId, req.trainingFile, "training_file"),
    tokenizer,
    template,
    {
      ...datasetOptions,
      previewExamples,
    },
  );
  const valid =
    req.validationFile === null
      ? null
      : profileDataset(
          await readLines(ctx, projectId, req.validationFile, "validation_file"),
          tokenizer,
          template,
          {
            ...datasetOptions,
            previewExamples: 0,
          },
        );

  const n = train.dataset.stats.examples;
  const hp = resolveHyperparameters(requested, Math.max(1, n));
  const autoRules = explainAutoValues(requested, hp, Math.max(1, n));
  const plan = planTraining({
    rowLengths: train.dataset.rows.map((r) => r.inputIds.length),
    validationRowLengths: valid?.dataset.rows.map((r) => r.inputIds.length) ?? [],
    batchSize: hp.batch_size,
    nEpochs: hp.n_epochs,
    microBatchSize: setup.microBatchSize,
    seed: req.seed,
  });
  const params = countParameters(config);
  const duration = estimateTrainingDuration({
    params,
    method: hp.full_finetune ? "full" : "lora",
    backend: setup.backend,
    passSlots: plan.passSlots,
    evalSlots: plan.evalSlots,
  });
  let longestRow = 0;
  for (const p of [train, valid])
    for (const r of p?.dataset.rows ?? []) longestRow = Math.max(longestRow, r.inputIds.length);
  const memory = memoryEstimate(config, hp, longestRow, setup);

  const warnings: PreflightWarning[] = [];
  const failure =
    datasetError(train.dataset.stats, "training_file", maxSeqLength) ??
    (valid ? datasetError(valid.dataset.stats, "validation_file", maxSeqLength) : null);
  if (failure) warnings.push(jobFailure(failure));
  if (
    tokenizer.chatTemplate === null &&
    (train.dataset.stats.formats.chat > 0 || (valid?.dataset.stats.formats.chat ?? 0) > 0)
  ) {
    const missing = ["<|im_start|>", "<|im_end|>"].filter((t) => !tokenizer.specialTokens.has(t));
    warnings.push({
      code: "no_chat_template",
      line: null,
      message:
        `Model '${req.model}' has no chat template, so chat examples are rendered with the ChatML default (<|im_start|>role … <|im_end|>)` +
        (missing.length
          ? `, whose ${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} not a special token of this tokenizer and will be split into ordinary text`
          : "") +
        ". Fix: add the model's chat_template to tokenizer_config.json (or chat_template.jinja) in its folder.",
    });
  }
  warnings.push(...fileWarnings({ which: "training", profile: train, tokenizer, hp }));
  if (valid) {
    warnings.push(...fileWarnings({ which: "validation", profile: valid, tokenizer, hp }));
    const overlap = overlapWarning(train, valid);
    if (overlap) warnings.push(overlap);
  }
  if (hp.max_seq_length > config.maxPositionEmbeddings) {
    warnings.push({
      code: "max_seq_length_exceeds_context",
      line: null,
      message:
        `max_seq_length ${hp.max_seq_length} is longer than the model's context (max_position_embeddings ${config.maxPositionEmbeddings}). ` +
        `Fix: set max_seq_length to at most ${config.maxPositionEmbeddings}.`,
    });
  }
  if (!hp.packing && train.dataset.stats.rows > 0 && train.dataset.stats.packingEfficiency < 0.5) {
    warnings.push({
      code: "low_packing_efficiency",
      line: null,
      message:
        `Only ${(train.dataset.stats.packingEfficiency * 100).toFixed(0)}% of the token slots hold real tokens with packing off. ` +
        "Fix: set packing to true to train the same examples in fewer, fuller rows.",
    });
  }
  if (!memory.fits) {
    warnings.push({
      code: "memory_exceeds_budget",
      line: null,
      message:
        `The estimated peak memory (${(memory.estimated_peak_bytes / 2 ** 30).toFixed(2)} GiB) exceeds the ${setup.backend} budget ` +
        `(${(memory.budget_bytes / 2 ** 30).toFixed(2)} GiB, ${memory.budget_source}). Fix: lower max_seq_length or the workers' ` +
        "WORKER_MICRO_BATCH, use LoRA instead of full fine-tuning, or run on a backend with more memory.",
    });
  }

  const auto_rules: Partial<Record<AutoRuleParam, string>> = autoRules;
  return {
    object: "fine_tuning.preflight",
    model: req.model,
    method: { type: "supervised", supervised: { hyperparameters: hp } },
    auto_rules,
    data: { training: dataFile(train), validation: valid ? dataFile(valid) : null },
    training: {
      parameters: params,
      steps_per_epoch: plan.stepsPerEpoch,
      total_steps: plan.totalSteps,
      estimated_duration_seconds: duration ? Math.max(1, Math.round(duration.seconds)) : null,
      duration_source: duration?.source ?? "no throughput figures for this method",
      memory,
      memory_source:
        "the engine's peak-memory estimate, as workers size it before training: min(WORKER_MICRO_BATCH, batch_size) rows of the longest row",
    },
    warnings,
    chat_template: tokenizer.chatTemplate === null ? "chatml_default" : "model",
    preview: train.previews.map((p) => ({
      line: p.line,
      kept: p.kept,
      truncated: p.truncated,
      segments: p.segments,
    })),
  };
}
