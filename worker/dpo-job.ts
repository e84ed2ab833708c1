// The DPO side of a job run: the preference data's checks and events, and the objective the
// training loop optimises (reference log-probabilities computed once, before the first step).

import type { NewEvent } from "../src/store/jobs/job-events.js";
import { buildPreferenceDataset, type PreferenceDataset } from "./engine/data/build-dataset.js";
import type { DataFileParam } from "./engine/data/dataset-problems.js";
import { datasetError, datasetWarnings, formatError, soleFormat } from "./engine/data/dataset-problems.js";
import type { ChatTemplate } from "./engine/hf/chat-template.js";
import type { HfTokenizer } from "./engine/hf/tokenizer.js";
import type { CausalLM } from "./engine/model/causal-lm.js";
import type { ResolvedDpoHyperparameters } from "./engine/train/dpo-hyperparameters.js";
import { dpoObjective, referenceLogprobs } from "./engine/train/dpo-objective.js";
import type { TrainObjective } from "./engine/train/train-objective.js";

/** Tokenize a preference file; a problem comes back as the job's error (OpenAI's shape). */
export function loadPreferenceData(
  lines: Iterable<string>,
  tokenizer: HfTokenizer,
  template: ChatTemplate,
  maxSeqLength: number,
  param: DataFileParam,
) {
  const data = buildPreferenceDataset(lines, tokenizer, template, { maxSeqLength });
  const problem =
    formatError(soleFormat(data.stats.formats), param, "dpo") ??
    datasetError(data.stats, param, maxSeqLength);
  return { data, problem };
}

/** The first start's events: what the data holds, dropped/truncated pairs, the resolved numbers. */
export function dpoStartEvents(
  train: PreferenceDataset,
  validation: PreferenceDataset | null,
  hp: ResolvedDpoHyperparameters,
): NewEvent[] {
  const s = train.stats;
  const events: NewEvent[] = [
    { message: `Training data: ${s.examples} preference pairs, ${s.totalTokens} tokens in ${s.rows} rows` },
  ];
  for (const w of datasetWarnings(s, "training", hp.max_seq_length))
    events.push({ level: "warn", message: w });
  if (validation) {
    for (const w of datasetWarnings(validation.stats, "validation", hp.max_seq_length))
      events.push({ level: "warn", message: w });
  }
  events.push({
    message:
      `Hyperparameters: n_epochs=${hp.n_epochs}, batch_size=${hp.batch_size}, ` +
      `learning_rate_multiplier=${hp.learning_rate_multiplier}, beta=${hp.beta}, loss_type=${hp.loss_type}` +
      (hp.rpo_alpha ? `, rpo_alpha=${hp.rpo_alpha}` : ""),
  });
  return events;
}

/**
 * The DPO objectives for training and validation pairs. Call before training touches the model:
 * the reference is the model as loaded (adapter disabled), computed once per pair.
 */
export async function dpoObjectives(
  model: CausalLM,
  train: PreferenceDataset,
  validation: PreferenceDataset | null,
  hp: ResolvedDpoHyperparameters,
  padId: number,
  microBatchSize: number,
): Promise<{ train: TrainObjective; validation?: TrainObjective; referenceMs: number }> {
  const settings = { beta: hp.beta, lossType: hp.loss_type, rpoAlpha: hp.rpo_alpha };
  const started = performance.now();
  const build = async (d: PreferenceDataset) =>
    dpoObjective(
      model,
      d.pairs,
      await referenceLogprobs(model, d.pairs, padId, microBatchSize),
      settings,
      padId,
    );
  const trainObjective = await build(train);
  const validationObjective = validation ? await build(validation) : undefined;
  return { train: trainObjective, validation: validationObjective, referenceMs: performance.now() - started };
}
