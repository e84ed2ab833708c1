// Learning-rate schedules, as transformers' get_linear_schedule_with_warmup and
// get_cosine_schedule_with_warmup define them. The Trainer evaluates the multiplier at
// the optimizer step index *before* that step runs (scheduler.step() comes after
// optimizer.step()), so with warm-up the very first update uses lr 0: we keep that quirk
// so a run here and a run with transformers see the same learning rates.

export type LrSchedulerType = "linear" | "cosine" | "constant";

export interface ScheduleConfig {
  type: LrSchedulerType;
  /** peak learning rate (base × multiplier) */
  peakLr: number;
  /** optimizer steps in the whole run (all epochs) */
  totalSteps: number;
  /** share of totalSteps spent warming up; transformers rounds up: ceil(total × ratio) */
  warmupRatio: number;
}

/** transformers' TrainingArguments.get_warmup_steps: ceil(total × ratio). */
export function warmupSteps(totalSteps: number, warmupRatio: number): number {
  if (!(warmupRatio >= 0 && warmupRatio <= 1)) {
    throw new RangeError(`warmup_ratio must be in [0, 1], got ${warmupRatio}`);
  }
  return Math.ceil(totalSteps * warmupRatio);
}

/** The multiplier λ(step) of the peak learning rate at 0-based optimizer step `step`. */
export function lrMultiplier(
  type: LrSchedulerType,
  step: number,
  totalSteps: number,
  warmup: number,
): number {
  if (step < warmup) return step / Math.max(1, warmup);
  if (type === "constant") return 1;
  const decaySteps = Math.max(1, totalSteps - warmup);
  if (type === "linear") return Math.max(0, (totalSteps - step) / decaySteps);
  // cosine with num_cycles = 0.5: one half-wave from 1 down to 0
  const progress = (step - warmup) / decaySteps;
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** The learning rate used by the update at 0-based optimizer step `step`. */
export function learningRateAt(config: ScheduleConfig, step: number): number {
  const warmup = warmupSteps(config.totalSteps, config.warmupRatio);
  return config.peakLr * lrMultiplier(config.type, step, config.totalSteps, warmup);
}
