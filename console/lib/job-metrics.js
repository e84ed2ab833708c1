// Chart series from a job's `metrics` events: one row per step (a resumed job may repeat a
// step; the later value wins). Pure, so history and live events go through the same code.
export const LOSS_SERIES = [
  { key: "train_loss", label: "training loss", color: "#2563eb" },
  { key: "valid_loss", label: "validation loss", color: "#ea580c" },
];
export const ACCURACY_SERIES = [
  { key: "train_mean_token_accuracy", label: "training token accuracy", color: "#2563eb" },
  { key: "valid_mean_token_accuracy", label: "validation token accuracy", color: "#ea580c" },
];
export const LEARNING_RATE_SERIES = [{ key: "learning_rate", label: "learning rate", color: "#7c3aed" }];
// DPO (TRL's rewards/chosen etc., `/` → `_`)
export const REWARD_SERIES = [
  { key: "train_rewards_chosen", label: "chosen", color: "#16a34a" },
  { key: "train_rewards_rejected", label: "rejected", color: "#dc2626" },
  { key: "train_rewards_margins", label: "margin", color: "#2563eb" },
  { key: "valid_rewards_chosen", label: "validation chosen", color: "#65a30d" },
  { key: "valid_rewards_rejected", label: "validation rejected", color: "#f97316" },
  { key: "valid_rewards_margins", label: "validation margin", color: "#0891b2" },
];
export const REWARD_ACCURACY_SERIES = [
  { key: "train_rewards_accuracies", label: "reward accuracy", color: "#16a34a" },
  { key: "valid_rewards_accuracies", label: "validation reward accuracy", color: "#ea580c" },
];

/** Map step → metrics data, from events in any order. */
export function metricsByStep(events) {
  const byStep = new Map();
  for (const e of events) {
    if (e.type !== "metrics" || !e.data || typeof e.data.step !== "number") continue;
    byStep.set(e.data.step, e.data);
  }
  return byStep;
}

/**
 * uPlot's columnar data for `series` ([steps, ys…]), or null when no series has a value.
 * Series with no value at all are left out; `series` of the result says which remain.
 */
export function chartData(byStep, series) {
  const steps = [...byStep.keys()].sort((a, b) => a - b);
  const present = series.filter((s) => steps.some((step) => typeof byStep.get(step)[s.key] === "number"));
  if (present.length === 0) return null;
  return {
    series: present,
    data: [
      steps,
      ...present.map((s) =>
        steps.map((step) => (typeof byStep.get(step)[s.key] === "number" ? byStep.get(step)[s.key] : null)),
      ),
    ],
  };
}

/** The newest step/total of the events, or null. */
export function progressOf(byStep) {
  let last = null;
  for (const [step, d] of byStep)
    if (!last || step > last.step) last = { step, total: d.total_steps ?? null };
  return last;
}
