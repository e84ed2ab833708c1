// The result file of a succeeded job (purpose fine-tune-results), OpenAI's columns:
// step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy — one row per step, from
// the job's metrics events. A resumed run deletes the metrics of the steps it trains again
// (worker/resume-point.ts); should a step still appear twice, the later one (the run that
// counted) wins.

export function resultsCsv(metrics: Record<string, unknown>[]): string {
  const byStep = new Map<number, Record<string, unknown>>();
  for (const m of metrics) if (typeof m.step === "number") byStep.set(m.step, m);
  const cell = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? String(v) : "");
  const lines = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"];
  for (const step of [...byStep.keys()].sort((a, b) => a - b)) {
    const m = byStep.get(step)!;
    lines.push(
      [step, cell(m.train_loss), cell(m.train_mean_token_accuracy), cell(m.valid_loss), cell(m.valid_mean_token_accuracy)].join(","),
    );
  }
  return `${lines.join("\n")}\n`;
}
