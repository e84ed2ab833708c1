// The training half of a job run: the backend and memory preflight, the resume point, the
// model (the parent's adapter merged in, a fresh LoRA on top), and the engine's training loop
// with the run's callbacks: a metrics event per step, a checkpoint at every epoch's end (both
// queued on the run's progress, so training goes on while the database is away), and the
// check before each step of whether to stop (cancel, pause, shutdown, a lost lease).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { isTransientDatabaseError } from "../src/store/db/transient-error.js";
import { addEvents, type NewEvent } from "../src/store/jobs/job-events.js";
import { newEventId } from "../src/store/jobs/job-ids.js";
import { type JobControl, readControl } from "../src/store/jobs/job-lease.js";
import { recordResume } from "../src/store/jobs/job-state-machine.js";
import { dpoObjectives } from "./dpo-job.js";
import { initBackend } from "./engine/backend/backend.js";
import type { TokenBatch } from "./engine/data/batch.js";
import { parseModelConfig } from "./engine/hf/config.js";
import type { LoraTargetModule } from "./engine/lora/lora-targets.js";
import { mergeAdapterIntoBase } from "./engine/lora/merge-adapter.js";
import type { CausalLM } from "./engine/model/causal-lm.js";
import { loadModel } from "./engine/model/load-model.js";
import { type EpochEnd, type StepMetrics, type TrainResult, train } from "./engine/train/train-loop.js";
import type { TrainObjective } from "./engine/train/train-objective.js";
import { readBlobBytes } from "./job-blobs.js";
import { saveModelArchive, storeEpochCheckpoint } from "./job-outputs.js";
import { type JobRun, outputTarget } from "./job-run.js";
import { chainedModelArchive } from "./parent-adapter.js";
import type { PreparedData } from "./prepare-data.js";
import { passShape } from "./prepare-data.js";
import { type PreflightResult, trainingPreflight } from "./training-preflight.js";

/** Why training stopped before its end (or "continue" when it ran to the end). */
export type StopReason = JobControl | "shutdown";

/** The backend and whether a step fits its memory, stated in the job's events on every start. */
export async function preflightTraining(run: JobRun, data: PreparedData): Promise<PreflightResult> {
  const hp = data.hp;
  const backend = await initBackend();
  const microBatch = Math.min(run.opts.microBatchSize ?? 4, hp.batch_size);
  const preflight = trainingPreflight({
    backend,
    config: parseModelConfig(JSON.parse(await readFile(join(data.folder, "config.json"), "utf8"))),
    method: hp.full_finetune ? "full" : "lora",
    loraRank: hp.lora_rank,
    loraTargets: hp.target_modules,
    loraDropout: hp.lora_dropout,
    ...passShape(data, microBatch),
    maxSeqLength: hp.max_seq_length,
  });
  await run.retry(() => addEvents(run.opts.database.db, run.job.id, preflight.events));
  return preflight;
}

/** The resume state to continue from (recorded in the job's events), or undefined for a fresh start. */
export async function readResumePoint(run: JobRun): Promise<Uint8Array | undefined> {
  const { job, opts } = run;
  if (!job.resumeBlobId) return undefined;
  const resumeBlobId = job.resumeBlobId;
  const resumeFrom = await run.retry(() => readBlobBytes(opts.database, resumeBlobId));
  const ids = { resuming: newEventId(), retrained: newEventId() };
  await run.retry(() => recordResume(opts.database.db, job.id, opts.workerId, job.resumeStep ?? 0, ids));
  return resumeFrom;
}

/**
 * The model to train: a fine-tuned parent's adapter merged into the base weights; the new
 * adapter (and DPO's reference, the model with that adapter disabled) sits on top of the parent.
 */
export async function loadTrainee(
  run: JobRun,
  data: PreparedData,
  gradientCheckpointing: boolean,
): Promise<CausalLM> {
  const hp = data.hp;
  const model = await loadModel(data.folder, { fullFinetune: hp.full_finetune, seed: run.job.seed });
  run.held.model = model;
  if (data.parent) await mergeAdapterIntoBase(model, data.parent.dir);
  if (!hp.full_finetune) {
    model.attachLora({
      r: hp.lora_rank,
      alpha: hp.lora_alpha,
      dropout: hp.lora_dropout,
      targetModules: hp.target_modules as LoraTargetModule[],
    });
  }
  model.gradientCheckpointing = gradientCheckpointing;
  return model;
}

/** The model's archive as published: the whole chain when the job fine-tunes a fine-tuned model. */
export function modelArchive(run: JobRun, data: PreparedData, model: CausalLM): Promise<Uint8Array> {
  const rootModel = run.job.baseModel ?? run.job.model;
  return data.parent
    ? chainedModelArchive(model, data.parent, data.hp.full_finetune, rootModel)
    : saveModelArchive(model, data.hp, rootModel);
}

/** One event per step, as OpenAI sends them: a `metrics` event whose message reads as a log line. */
function stepEvent(m: StepMetrics): NewEvent {
  const data: Record<string, number> = {
    step: m.step,
    total_steps: m.total_steps,
    train_loss: m.train_loss,
    ...m.extra,
    learning_rate: m.learning_rate,
    trained_tokens: m.trained_tokens,
  };
  if (m.valid_loss !== undefined) data.valid_loss = m.valid_loss;
  const valid = m.valid_loss !== undefined ? `, validation loss=${m.valid_loss.toFixed(4)}` : "";
  return {
    type: "metrics",
    message: `Step ${m.step}/${m.total_steps}: training loss=${m.train_loss.toFixed(4)}${valid}`,
    data,
  };
}

/** The step callback: its event and the estimated finish, written now or kept while the database is away. */
function progressReporter(run: JobRun) {
  const clock = { startedAt: Date.now(), firstStep: null as number | null };
  const onStep = async (m: StepMetrics) => {
    clock.firstStep ??= m.step - 1;
    const perStep = (Date.now() - clock.startedAt) / Math.max(1, m.step - clock.firstStep);
    const estimatedFinish = new Date(Date.now() + perStep * (m.total_steps - m.step));
    run.progress.addEvents([stepEvent(m)], estimatedFinish);
    await run.progress.flush();
  };
  return { onStep, restartClock: () => (clock.startedAt = Date.now()) };
}

/** Asked before each step; remembers why it said stop. */
function stopCheck(run: JobRun) {
  const state = { reason: "continue" as StopReason };
  const shouldStop = async (): Promise<boolean> => {
    if (state.reason !== "continue") return true;
    if (run.heartbeat.state.lost || run.progress.lost) state.reason = "lost";
    else if (run.opts.shuttingDown()) state.reason = "shutdown";
    else if (run.progress.databaseDue()) {
      try {
        state.reason = await readControl(run.opts.database.db, run.job.id, run.opts.workerId);
      } catch (err) {
        // the database is away: keep training; the queued writes re-check ownership on return
        if (!isTransientDatabaseError(err)) throw err;
      }
    }
    return state.reason !== "continue";
  };
  return { state, shouldStop };
}

type Objectives = { train: TrainObjective | TokenBatch; validation?: TrainObjective | TokenBatch };

async function objectivesOf(run: JobRun, data: PreparedData, model: CausalLM): Promise<Objectives> {
  if (data.kind === "supervised") return { train: data.train.batch, validation: data.validation?.batch };
  const micro = run.opts.microBatchSize ?? 4;
  const dpo = await dpoObjectives(model, data.train, data.validation, data.hp, data.padId, micro);
  const pairs = data.train.pairs.length + (data.validation?.pairs.length ?? 0);
  run.opts.log(
    `job ${run.job.id}: reference log-probs of ${pairs} pairs in ${dpo.referenceMs.toFixed(0)} ms`,
  );
  return dpo;
}

/** Trains to the end or until a stop; every epoch's end stores a checkpoint. */
export async function trainModel(
  run: JobRun,
  data: PreparedData,
  model: CausalLM,
  resumeFrom: Uint8Array | undefined,
): Promise<{ result: TrainResult; stopReason: StopReason }> {
  const reporter = progressReporter(run);
  const stop = stopCheck(run);
  const onEpochEnd = async (end: EpochEnd) => {
    const archive = await modelArchive(run, data, model);
    run.progress.addTask(() => storeEpochCheckpoint(outputTarget(run), end, archive, end.checkpoint));
    await run.progress.flush();
  };
  const objectives = await objectivesOf(run, data, model);
  reporter.restartClock();
  const result = await train({
    model,
    train: objectives.train,
    validation: objectives.validation,
    hyperparameters: data.hp,
    seed: run.job.seed,
    microBatchSize: run.opts.microBatchSize,
    onStep: reporter.onStep,
    onEpochEnd,
    shouldStop: stop.shouldStop,
    resumeFrom,
    checkpointMeta: { job: run.job.id, hyperparameters: data.hp },
  });
  return { result, stopReason: stop.state.reason };
}
