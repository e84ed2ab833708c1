// Golden DPO parity: the checks of a fixture folder's dpo.json (TRL's sigmoid DPO on a PEFT model,
// reference = adapter disabled; see test/fixtures/README.md) against our engine. Every number
// goes through the training path: referenceLogprobs, dpoObjective and computeGradients (the one
// gradient path the training loop steps with).
// check-golden.ts runs these after its own when the folder has a dpo.json.

import { access, readFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type { EncodedPreference } from "../../worker/engine/data/encode-preference.js";
import type { CausalLM } from "../../worker/engine/model/causal-lm.js";
import { loadModel } from "../../worker/engine/model/load-model.js";
import { dpoPairTerms } from "../../worker/engine/train/dpo-loss.js";
import { dpoObjective, referenceLogprobs } from "../../worker/engine/train/dpo-objective.js";
import { goldenAdamW } from "./golden-adamw.js";
import { disposeStep, stepGradients } from "./step-gradients.js";

export const DPO_TOLERANCES = { logp: 1e-4, loss: 1e-4, gradRelative: 1e-3, adamwLoss: 1e-4 } as const;

export interface DpoCheck {
  name: string;
  maxError: number;
  tolerance: number;
  detail?: string;
}

// dpo.json is external data, checked field by field where used
type DpoGolden = any;

export async function hasDpoGolden(dir: string): Promise<boolean> {
  return access(path.join(dir, "dpo.json")).then(
    () => true,
    () => false,
  );
}

function pairsOf(golden: DpoGolden): EncodedPreference[] {
  return golden.pairs.map((p: { prompt_ids: number[]; chosen_ids: number[]; rejected_ids: number[] }) => ({
    promptIds: Int32Array.from(p.prompt_ids),
    chosenIds: Int32Array.from(p.chosen_ids),
    chosenLabels: Int32Array.from(p.chosen_ids),
    rejectedIds: Int32Array.from(p.rejected_ids),
    rejectedLabels: Int32Array.from(p.rejected_ids),
  }));
}

const maxAbs = (a: readonly number[], b: readonly number[]) =>
  a.reduce(
    (m, v, i) => Math.max(m, Math.abs(v - b[i]!)),
    a.length === b.length ? 0 : Number.POSITIVE_INFINITY,
  );

/** The largest relative error of our per-tensor gradient norms against the reference, and its tensor. */
async function worstNormError(
  grads: tf.NamedTensorMap,
  reference: Record<string, number>,
): Promise<[number, string]> {
  let worst = 0;
  let worstName = "";
  for (const [key, norm] of Object.entries(reference)) {
    const g = grads[key];
    const sq = g ? tf.tidy(() => tf.sum(tf.square(g))) : null;
    const ours = sq ? Math.sqrt((await sq.data())[0]!) : undefined;
    sq?.dispose();
    const err = ours === undefined ? Number.POSITIVE_INFINITY : Math.abs(ours - norm) / Math.max(norm, 1e-12);
    if (err >= worst) [worst, worstName] = [err, key];
  }
  return [worst, worstName];
}

async function runCase(
  model: CausalLM,
  pairs: EncodedPreference[],
  name: string,
  c: DpoGolden,
): Promise<DpoCheck[]> {
  const out: DpoCheck[] = [];
  const add = (what: string, maxError: number, tolerance: number, detail?: string) =>
    out.push({ name: `DPO ${name}: ${what}`, maxError, tolerance, detail });
  const settings = { beta: c.beta as number, lossType: "sigmoid" as const, rpoAlpha: null };
  const reference = await referenceLogprobs(model, pairs, 0);
  const objective = dpoObjective(model, pairs, reference, settings, 0);
  const all = pairs.map((_, i) => i);
  const batch = objective.select(all);
  const n = pairs.length;

  const policyT = model.sequenceLogprobs(batch.batch, {});
  const policy = Array.from(await policyT.data());
  const perPair = dpoPairTerms(policyT, tf.tensor1d(batch.reference), batch.lengths, settings);
  const [losses, chosenRewards, rejectedRewards] = await Promise.all(
    [perPair.losses, perPair.chosenRewards, perPair.rejectedRewards].map(async (t) =>
      Array.from(await t.data()),
    ),
  );
  tf.dispose([policyT, perPair.losses, perPair.chosenRewards, perPair.rejectedRewards]);

  const ref = c.per_pair as Record<string, number>[];
  const oursLogps = ref.flatMap((_, i) => [
    policy[i]!,
    policy[n + i]!,
    batch.reference[i]!,
    batch.reference[n + i]!,
  ]);
  const theirLogps = ref.flatMap((p) => [
    p.policy_chosen_logp!,
    p.policy_rejected_logp!,
    p.ref_chosen_logp!,
    p.ref_rejected_logp!,
  ]);
  add("policy and reference log-probs", maxAbs(oursLogps, theirLogps), DPO_TOLERANCES.logp);

  const step = await stepGradients(model, objective, [batch]);
  const [meanLoss] = await step.loss.data();
  const stats = Array.from(await step.stats!.data());
  const metrics = objective.metrics(stats, step.stepCounts);
  add(
    "per-pair and mean loss",
    maxAbs([...losses, meanLoss!], [...ref.map((p) => p.loss!), c.loss]),
    DPO_TOLERANCES.loss,
  );
  add(
    "rewards, accuracy and margin",
    maxAbs(
      [...chosenRewards, ...rejectedRewards, metrics.rewards_accuracies!, metrics.rewards_margins!],
      [
        ...ref.map((p) => p.chosen_reward!),
        ...ref.map((p) => p.rejected_reward!),
        c.reward_accuracy,
        c.reward_margin,
      ],
    ),
    DPO_TOLERANCES.loss,
  );
  if (c.lora_grad_norms) {
    const refNorms = c.lora_grad_norms as Record<string, number>;
    const [worst, worstName] = await worstNormError(step.grads!, refNorms);
    add("LoRA grad norms (relative)", worst, DPO_TOLERANCES.gradRelative, `worst ${worstName}`);
    // gradient accumulation: one pair per micro-batch, normalised by the whole step
    const onePairEach = all.map((i) => objective.select([i]));
    const accumulated = await stepGradients(model, objective, onePairEach);
    const [worstAcc, worstAccName] = await worstNormError(accumulated.grads!, refNorms);
    disposeStep(accumulated);
    add(
      "LoRA grad norms, one pair per micro-batch (relative)",
      worstAcc,
      DPO_TOLERANCES.gradRelative,
      `worst ${worstAccName}`,
    );
  }
  disposeStep(step);

  if (c.adamw) {
    const cfg = c.adamw;
    const opt = goldenAdamW(cfg);
    const ours: number[] = [];
    for (let s = 0; s <= cfg.steps; s++) {
      const step = await stepGradients(model, objective, [batch]);
      ours.push((await step.loss.data())[0]!);
      if (s < cfg.steps) opt.applyGradients(model.trainableParams, step.grads!, cfg.lr);
      disposeStep(step);
    }
    opt.dispose();
    add(
      "AdamW losses after 0..3 steps",
      maxAbs(ours, cfg.losses_before_each_step_and_after_last),
      DPO_TOLERANCES.adamwLoss,
      `ours ${ours.map((l) => l.toFixed(6)).join(" ")}`,
    );
  }
  return out;
}

/** Every DPO check of a fixture folder with a dpo.json (schema_version 1). */
export async function runDpoChecks(dir: string): Promise<DpoCheck[]> {
  const golden: DpoGolden = JSON.parse(await readFile(path.join(dir, "dpo.json"), "utf8"));
  if (golden.schema_version !== 1)
    throw new Error(`${dir}/dpo.json: schema_version ${golden.schema_version}, expected 1`);
  const pairs = pairsOf(golden);
  const checks: DpoCheck[] = [];
  for (const [name, c] of Object.entries(golden.cases as Record<string, DpoGolden>)) {
    // every case starts from the fixture's adapter; PEFT's init then zeroes lora_B
    const model = await loadModel(dir, { adapterDir: path.join(dir, "adapter") });
    try {
      if (String(c.adapter).startsWith("PEFT default init")) {
        for (const [key, v] of model.trainableParams) if (key.includes("lora_B")) v.assign(tf.zerosLike(v));
      }
      checks.push(...(await runCase(model, pairs, name, c)));
    } finally {
      model.dispose();
    }
  }
  return checks;
}
