// Training throughput the engine measured, and the duration estimate a job's preflight gives
// from it. Rows come from `npm run bench:train` (batch 8 × 128, packed chat-like rows, through
// the real training loop; tokens/s counts slots, padding included) on the machines named in each
// row. A model between two measured sizes is interpolated by FLOP rate: FLOPs ≈ 6 · params ·
// tokens, and the FLOP rate (6 · params · tokens/s) is interpolated linearly in log(params);
// outside the measured sizes the nearest row's FLOP rate is used. Small models are dominated by
// per-kernel overhead, so the FLOP rate grows with size; the nearest row keeps estimates for
// larger models on the slow side rather than the fast side.

export type TrainingMethod = "lora" | "full";

export interface ThroughputRow {
  /** the benchmark's model name */
  model: string;
  params: number;
  /** tfjs backend the figure was measured on (wasm includes the native OpenBLAS matmul when noted) */
  backend: string;
  method: TrainingMethod;
  tokensPerSecond: number;
  /** command, machine and date */
  source: string;
}

const BENCH_2VCPU = "npm run bench:train, wasm + native OpenBLAS matmul, 2-vCPU Xeon (shared), 2026-11-29";

export const THROUGHPUT_TABLE: readonly ThroughputRow[] = [
  {
    model: "llama fixture",
    params: 123_200,
    backend: "wasm",
    method: "lora",
    tokensPerSecond: 5347,
    source: BENCH_2VCPU,
  },
  {
    model: "llama fixture",
    params: 123_200,
    backend: "wasm",
    method: "full",
    tokensPerSecond: 8296,
    source: BENCH_2VCPU,
  },
  {
    model: "gpt-3.7M",
    params: 3_672_320,
    backend: "wasm",
    method: "lora",
    tokensPerSecond: 1569,
    source: BENCH_2VCPU,
  },
  {
    model: "gpt-3.7M",
    params: 3_672_320,
    backend: "wasm",
    method: "full",
    tokensPerSecond: 1304,
    source: BENCH_2VCPU,
  },
];

export interface DurationInput {
  params: number;
  method: TrainingMethod;
  backend: string;
  /** token slots of forward + backward passes */
  trainSlots: number;
  /** token slots of forward-only passes (validation) */
  evalSlots: number;
}

export interface DurationEstimate {
  seconds: number;
  /** the rows used and how, for a reader */
  source: string;
  /** effective tokens/s for this model (training passes) */
  tokensPerSecond: number;
}

const describeRow = (r: ThroughputRow) =>
  `${r.model} (${r.params.toLocaleString("en-US")} params) ${r.method} on ${r.backend}: ${r.tokensPerSecond} tokens/s`;

export function estimateTrainingDuration(
  input: DurationInput,
  table: readonly ThroughputRow[] = THROUGHPUT_TABLE,
): DurationEstimate | null {
  let rows = table.filter((r) => r.backend === input.backend && r.method === input.method);
  let note = "";
  if (rows.length === 0) {
    rows = table.filter((r) => r.backend === "wasm" && r.method === input.method);
    note = `no figures measured on backend '${input.backend}'; wasm figures used. `;
  }
  if (rows.length === 0) return null;
  rows = [...rows].sort((a, b) => a.params - b.params);
  const flopRate = (r: ThroughputRow) => 6 * r.params * r.tokensPerSecond;
  let rate: number;
  let how: string;
  const above = rows.findIndex((r) => r.params >= input.params);
  if (above === 0 || above === -1) {
    const r = above === 0 ? rows[0] : rows[rows.length - 1];
    rate = flopRate(r);
    how =
      r.params === input.params
        ? `measured: ${describeRow(r)}`
        : `nearest measured size, scaled by FLOPs ≈ 6·params·tokens: ${describeRow(r)}`;
  } else {
    const lo = rows[above - 1];
    const hi = rows[above];
    const t = (Math.log(input.params) - Math.log(lo.params)) / (Math.log(hi.params) - Math.log(lo.params));
    rate = Math.exp(Math.log(flopRate(lo)) + t * (Math.log(flopRate(hi)) - Math.log(flopRate(lo))));
    how = `interpolated by FLOPs ≈ 6·params·tokens between ${describeRow(lo)} and ${describeRow(hi)}`;
  }
  const tokensPerSecond = rate / (6 * input.params);
  // a forward-only pass is about a third of a training pass (2 · params · tokens)
  const seconds = (6 * input.params * input.trainSlots + 2 * input.params * input.evalSlots) / rate;
  const sources = [...new Set(rows.map((r) => r.source))].join("; ");
  return {
    seconds,
    tokensPerSecond,
    source: `${note}${how} (${sources}); ${Math.round(input.trainSlots)} training and ${Math.round(input.evalSlots)} validation token slots at ${Math.round(tokensPerSecond)} tokens/s for ${input.params.toLocaleString("en-US")} params`,
  };
}
