// `npm run bench:train -- --shape smollm2-135m|qwen2.5-0.5b|qwen2.5-1.5b [--backend tensorflow,wasm]
//   [--modes lora,full] [--rows R --seq T] [--steps N]`
// Builds the shape (bench/real-size-shapes.ts, under models/), then times each mode on each
// backend in its own process (bench/real-size-step.ts): ms/step, tokens/s, peak RSS, model
// GFLOP/s, and the estimate it ran under. With PEER_PYTHON (a python with torch, transformers and
// peft) and PEER_SCRIPT (the peer's real_size.py) set, the PyTorch peer runs the same step in the
// same run and ratios are printed; otherwise the last measured peer figures are shown.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { loadavg } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseModelConfig } from "../worker/engine/hf/config.js";
import { trainingStepFlops } from "./real-size-flops.js";
import { ensureRealSizeModel, isShapeName, type ShapeName } from "./real-size-shapes.js";

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const DEFAULT_ROWS_SEQ: Record<ShapeName, [number, number]> = {
  "smollm2-135m": [4, 256],
  "qwen2.5-0.5b": [1, 512],
  "qwen2.5-1.5b": [1, 512],
};
// transformers 5.18 + PEFT 0.21, torch 2.13 CPU, 2 threads, LoRA r8 on all seven projections,
// measured on the 2-core AVX-512 Xeon the project is developed on (2026-11-29)
const LAST_PEER: Record<string, { stepMs: number; tokensPerSec: number; peakRssMiB: number }> = {
  "smollm2-135m lora 4x256": { stepMs: 5470, tokensPerSec: 187, peakRssMiB: 4673 },
  "smollm2-135m lora 1x256": { stepMs: 1610, tokensPerSec: 160, peakRssMiB: 1812 },
  "qwen2.5-0.5b lora 1x512": { stepMs: 20000, tokensPerSec: 24, peakRssMiB: 7248 },
};

interface Figures {
  backend: string;
  mode: string;
  error: string | null;
  stepMsMedian: number;
  tokensPerSec: number;
  gflopsPerSec?: number;
  peakRssMiB: number;
  estimatedPeakMiB?: number;
  gradientCheckpointing?: boolean;
  /** the 1-minute load average when the configuration finished (2 shared cores) */
  load?: number;
}

const load1 = () => Math.round(loadavg()[0]! * 100) / 100;

async function ours(dir: string, backend: string, mode: string, rows: number, seq: number, steps: number) {
  try {
    const { stdout } = await run(
      process.execPath,
      [
        "--import",
        "tsx",
        path.join(root, "bench/real-size-step.ts"),
        "--model",
        dir,
        "--mode",
        mode,
        "--rows",
        String(rows),
        "--seq",
        String(seq),
        "--steps",
        String(steps),
      ],
      {
        cwd: root,
        env: {
          ...process.env,
          TFJS_BACKEND: backend,
          TF_CPP_MIN_LOG_LEVEL: "3",
          MALLOC_MMAP_THRESHOLD_: "65536",
        },
        maxBuffer: 64 * 2 ** 20,
        timeout: 3_600_000,
      },
    );
    return { ...(JSON.parse(stdout.trim().split("\n").at(-1)!) as Figures), load: load1() };
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim().split("\n").at(-1) ?? (e as Error).message;
    return {
      backend,
      mode,
      error: msg.slice(0, 200),
      stepMsMedian: Number.NaN,
      tokensPerSec: 0,
      peakRssMiB: 0,
    };
  }
}

async function peer(
  flops: number,
  dir: string,
  mode: string,
  rows: number,
  seq: number,
  steps: number,
): Promise<Figures | null> {
  const python = process.env.PEER_PYTHON;
  const script = process.env.PEER_SCRIPT;
  if (!python || !script) return null;
  try {
    const { stdout } = await run(
      python,
      [
        script,
        "peer",
        dir,
        "--mode",
        mode,
        "--rows",
        String(rows),
        "--seq",
        String(seq),
        "--steps",
        String(steps),
      ],
      { maxBuffer: 64 * 2 ** 20, timeout: 3_600_000 },
    );
    const r = JSON.parse(stdout.trim().split("\n").at(-1)!);
    return {
      backend: "pytorch peer",
      mode,
      error: null,
      stepMsMedian: r.stepSMedian * 1000,
      tokensPerSec: r.tokensPerSec,
      gflopsPerSec: Math.round(flops / (r.stepSMedian * 1000) / 1e6),
      peakRssMiB: r.peakRssMiB,
      load: load1(),
    };
  } catch (e) {
    return {
      backend: "pytorch peer",
      mode,
      error: (e as Error).message.split("\n")[0]!,
      stepMsMedian: Number.NaN,
      tokensPerSec: 0,
      peakRssMiB: 0,
    };
  }
}

function line(f: Figures, ref: Figures | null): string {
  if (f.error) return `  ${f.backend.padEnd(18)} ${f.mode.padEnd(5)} FAILED: ${f.error}`;
  const ratio =
    ref && !ref.error
      ? `  ${(f.tokensPerSec / ref.tokensPerSec).toFixed(2)}× peer tok/s, ${(f.peakRssMiB / ref.peakRssMiB).toFixed(2)}× peer RSS`
      : "";
  const est = f.estimatedPeakMiB
    ? `, estimate ${f.estimatedPeakMiB} MiB${f.gradientCheckpointing ? " (checkpointing)" : ""}`
    : "";
  const gf = f.gflopsPerSec ? `  ${f.gflopsPerSec} GFLOP/s` : "";
  const load = f.load === undefined ? "" : `  (load ${f.load.toFixed(2)})`;
  return `  ${f.backend.padEnd(18)} ${f.mode.padEnd(5)} ${f.stepMsMedian.toFixed(0).padStart(7)} ms/step  ${f.tokensPerSec.toFixed(1).padStart(7)} tok/s${gf}  peak RSS ${f.peakRssMiB} MiB${est}${ratio}${load}`;
}

export async function benchRealSize(opts: {
  shape: string;
  backends: string[];
  modes: string[];
  rows?: number;
  seq?: number;
  steps: number;
}): Promise<void> {
  if (!isShapeName(opts.shape))
    throw new Error(`--shape must be one of smollm2-135m, qwen2.5-0.5b, qwen2.5-1.5b`);
  const [defRows, defSeq] = DEFAULT_ROWS_SEQ[opts.shape];
  const rows = opts.rows ?? defRows;
  const seq = opts.seq ?? defSeq;
  const modelsDir = path.join(root, "models");
  await ensureRealSizeModel(modelsDir, opts.shape);
  const dir = path.join(modelsDir, opts.shape);
  const config = parseModelConfig(JSON.parse(await readFile(path.join(dir, "config.json"), "utf8")));
  console.log(
    `${opts.shape}, ${rows} × ${seq} token slots per step (half the labels masked), 1 warm-up + ${opts.steps} timed steps`,
  );
  console.log(
    `load average before: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")} (figures are only comparable within one run)`,
  );
  for (const mode of opts.modes) {
    const flops = trainingStepFlops(config, mode === "full" ? "full" : "lora", rows, seq);
    const p = await peer(flops, dir, mode, rows, seq, opts.steps);
    const last = LAST_PEER[`${opts.shape} ${mode} ${rows}x${seq}`];
    const ref: Figures | null =
      p ??
      (last
        ? {
            backend: "peer (last measured)",
            mode,
            error: null,
            stepMsMedian: last.stepMs,
            tokensPerSec: last.tokensPerSec,
            peakRssMiB: last.peakRssMiB,
          }
        : null);
    if (ref) console.log(line(ref, null));
    else
      console.log(`  no peer figures for ${mode} at this shape (set PEER_PYTHON and PEER_SCRIPT to run it)`);
    for (const backend of opts.backends)
      console.log(line(await ours(dir, backend, mode, rows, seq, opts.steps), ref));
  }
  console.log(
    `load average after: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
}
