// The result file of a succeeded job (purpose fine-tune-results), OpenAI's columns:
// step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy — one row per step, from
// the job's metrics events; a DPO job's file has step,train_loss,valid_loss and TRL's reward
// columns (train_rewards_chosen, …_rejected, …_accuracies, …_margins, and the valid_ ones).
// A resumed run deletes the metrics of the steps it trains again (recordResume, src/store/jobs/job-state-machine.ts); should
// a step still appear twice, the later one (the run that counted) wins.

const DPO_REWARDS = ["rewards_chosen", "rewards_rejected", "rewards_accuracies", "rewards_margins"];

const SUPERVISED_COLUMNS: [string, string][] = [
  ["step", "step"],
  ["train_loss", "train_loss"],
  ["train_accuracy", "train_mean_token_accuracy"],
  ["valid_loss", "valid_loss"],
  ["valid_mean_token_accuracy", "valid_mean_token_accuracy"],
];

const DPO_COLUMNS: [string, string][] = [
  ["step", "step"],
  ["train_loss", "train_loss"],
  ["valid_loss", "valid_loss"],
  ...DPO_REWARDS.map((r): [string, string] => [`train_${r}`, `train_${r}`]),
  ...DPO_REWARDS.map((r): [string, string] => [`valid_${r}`, `valid_${r}`]),
];

export function resultsCsv(metrics: Record<string, unknown>[]): string {
  const byStep = new Map<number, Record<string, unknown>>();
  for (const m of metrics) if (typeof m.step === "number") byStep.set(m.step, m);
  const dpo = metrics.some((m) => "train_rewards_margins" in m);
  const columns = dpo ? DPO_COLUMNS : SUPERVISED_COLUMNS;
  const cell = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? String(v) : "");
  const lines = [columns.map(([header]) => header).join(",")];
  for (const step of [...byStep.keys()].sort((a, b) => a - b)) {
    const m = byStep.get(step)!;
    lines.push(columns.map(([, key]) => cell(m[key])).join(","));
  }
  return `${lines.join("\n")}\n`;
}
