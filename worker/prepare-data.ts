// A claimed job's inputs: the base model (and the parent's adapter when it fine-tunes a
// fine-tuned model), its files read and tokenized, and `auto` hyperparameters resolved. Bad
// data fails the job, as OpenAI does (the api refused what the upload summaries show, see
// validate-job-files.ts; this is the full check after tokenizing): a JobFailure carries the
// job's error.
import type { DatabaseHandle } from "../src/store/db/client.js";
import { findFile } from "../src/store/files/file-repository.js";
import type { NewEvent } from "../src/store/jobs/job-events.js";
import type { JobError, JobRow } from "../src/store/jobs/job-objects.js";
import { type JobMethod, methodHyperparameters } from "../src/store/jobs/job-spec.js";
import { findBaseModel } from "../src/store/models/base-models.js";
import { dpoStartEvents, loadPreferenceData } from "./dpo-job.js";
import { buildDataset, type PreferenceDataset, type SftDataset } from "./engine/data/build-dataset.js";
import {
  datasetError,
  datasetWarnings,
  formatError,
  missingFileError,
  soleFormat,
} from "./engine/data/dataset-problems.js";
import { type ChatTemplate, resolveChatTemplate } from "./engine/hf/chat-template.js";
import { type HfTokenizer, loadTokenizer } from "./engine/hf/tokenizer.js";
import {
  type ResolvedDpoHyperparameters,
  resolveDpoHyperparameters,
} from "./engine/train/dpo-hyperparameters.js";
import { type ResolvedHyperparameters, resolveHyperparameters } from "./engine/train/hyperparameters.js";
import { readFileLines } from "./job-blobs.js";
import { fetchParentAdapter, type ParentAdapter } from "./parent-adapter.js";

/** A job-level failure with OpenAI's error shape. */
export class JobFailure extends Error {
  constructor(readonly error: JobError) {
    super(error.message);
  }
}

export type PreparedData = (
  | { kind: "supervised"; train: SftDataset; validation: SftDataset | null; hp: ResolvedHyperparameters }
  | {
      kind: "dpo";
      train: PreferenceDataset;
      validation: PreferenceDataset | null;
      hp: ResolvedDpoHyperparameters;
    }
) & {
  folder: string;
  padId: number;
  /** fine-tuning a fine-tuned model: the parent's adapter, merged into the base before training */
  parent: ParentAdapter | null;
};

type FileParam = "training_file" | "validation_file";

/** What tokenizing one of the job's files needs. */
interface DataReader {
  job: JobRow;
  tokenizer: HfTokenizer;
  template: ChatTemplate;
  maxSeqLength: number;
  lines(fileId: string, param: FileParam): Promise<string[]>;
}

export async function prepareData(
  handle: DatabaseHandle,
  modelsDir: string,
  job: JobRow,
): Promise<PreparedData> {
  const method = job.method as JobMethod;
  const requested = methodHyperparameters(method);
  const baseName = job.baseModel ?? job.model;
  const base = await findBaseModel({ modelsDir }, baseName);
  if (!base) {
    throw new JobFailure({
      code: "model_not_found",
      message: `Base model '${baseName}' is no longer under MODELS_DIR on this worker`,
      param: "model",
    });
  }
  const parent = await parentOf(handle, job);
  const tokenizer = await loadTokenizer(base.dir);
  const reader: DataReader = {
    job,
    tokenizer,
    template: resolveChatTemplate(tokenizer.chatTemplate, {
      specialTokens: tokenizer.specialTokensMap,
      now: () => job.createdAt,
    }),
    maxSeqLength: requested.max_seq_length ?? resolveHyperparameters(requested, 1).max_seq_length,
    lines: async (fileId, param) => {
      const file = await findFile(handle.db, job.projectId, fileId);
      if (!file) throw new JobFailure(missingFileError(fileId, param));
      return readFileLines(handle, file.blobId);
    },
  };
  const shared = { folder: base.dir, padId: tokenizer.padId, parent };
  if (method.type === "dpo") return { ...(await loadDpo(reader, method)), ...shared };
  return { ...(await loadSupervised(reader, requested)), ...shared };
}

/** The parent's adapter when the job fine-tunes a fine-tuned model; it must still exist. */
async function parentOf(handle: DatabaseHandle, job: JobRow): Promise<ParentAdapter | null> {
  if (!job.baseModel) return null;
  const parent = await fetchParentAdapter(handle, job.projectId, job.model);
  if (!parent) {
    throw new JobFailure({
      code: "model_not_found",
      message: `The model '${job.model}' no longer exists (it was deleted, or the checkpoint pruned)`,
      param: "model",
    });
  }
  return parent;
}

async function loadDpo(r: DataReader, method: Extract<JobMethod, { type: "dpo" }>) {
  const load = async (fileId: string, param: FileParam) => {
    const lines = await r.lines(fileId, param);
    const { data, problem } = loadPreferenceData(lines, r.tokenizer, r.template, r.maxSeqLength, param);
    if (problem) throw new JobFailure(problem);
    return data;
  };
  const train = await load(r.job.trainingFile, "training_file");
  const validation = r.job.validationFile ? await load(r.job.validationFile, "validation_file") : null;
  const hp = resolveDpoHyperparameters(method.dpo.hyperparameters, train.stats.examples);
  return { kind: "dpo" as const, train, validation, hp };
}

async function loadSupervised(r: DataReader, requested: ReturnType<typeof methodHyperparameters>) {
  const packing = requested.packing ?? true;
  const load = async (fileId: string, param: FileParam) => {
    const lines = await r.lines(fileId, param);
    const options = { maxSeqLength: r.maxSeqLength, packing, seed: r.job.seed };
    const data = buildDataset(lines, r.tokenizer, r.template, options);
    const problem =
      formatError(soleFormat(data.stats.formats), param) ?? datasetError(data.stats, param, r.maxSeqLength);
    if (problem) throw new JobFailure(problem);
    return data;
  };
  const train = await load(r.job.trainingFile, "training_file");
  const validation = r.job.validationFile ? await load(r.job.validationFile, "validation_file") : null;
  const hp = resolveHyperparameters(requested, train.stats.examples);
  return { kind: "supervised" as const, train, validation, hp };
}

/** The method with every `auto` resolved: what the job row keeps once training starts. */
export function resolvedMethod(data: PreparedData): JobMethod {
  return data.kind === "dpo"
    ? { type: "dpo", dpo: { hyperparameters: { ...data.hp } } }
    : { type: "supervised", supervised: { hyperparameters: { ...data.hp } } };
}

/** The first start's events: what the data holds, what was dropped or cut, the resolved numbers. */
export function firstStartEvents(data: PreparedData): NewEvent[] {
  if (data.kind === "dpo") {
    return [...dpoStartEvents(data.train, data.validation, data.hp), { message: "Fine-tuning job started" }];
  }
  const s = data.train.stats;
  const events: NewEvent[] = [
    {
      message: `Training data: ${s.examples} examples, ${s.totalTokens} tokens in ${s.rows} rows (packing efficiency ${(s.packingEfficiency * 100).toFixed(1)}%)`,
    },
  ];
  for (const w of datasetWarnings(s, "training", data.hp.max_seq_length))
    events.push({ level: "warn", message: w });
  if (data.validation) {
    for (const w of datasetWarnings(data.validation.stats, "validation", data.hp.max_seq_length))
      events.push({ level: "warn", message: w });
  }
  events.push({
    message: `Hyperparameters: n_epochs=${data.hp.n_epochs}, batch_size=${data.hp.batch_size}, learning_rate_multiplier=${data.hp.learning_rate_multiplier}`,
  });
  events.push({ message: "Fine-tuning job started" });
  return events;
}

/** The rows and length of one forward pass: a DPO pair is two rows (chosen and rejected). */
export function passShape(data: PreparedData, microBatch: number): { microBatch: number; seqLen: number } {
  if (data.kind === "supervised") {
    return { microBatch, seqLen: Math.max(data.train.batch.seqLen, data.validation?.batch.seqLen ?? 0) };
  }
  let seqLen = 0;
  for (const p of [...data.train.pairs, ...(data.validation?.pairs ?? [])]) {
    seqLen = Math.max(seqLen, p.promptIds.length + Math.max(p.chosenIds.length, p.rejectedIds.length));
  }
  return { microBatch: 2 * microBatch, seqLen };
}
