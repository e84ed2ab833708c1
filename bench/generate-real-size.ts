// `npm run bench:generate -- --shape smollm2-135m|qwen2.5-0.5b|qwen2.5-1.5b [--backend tensorflow,wasm]
//   [--prompt 128] [--new 32] [--runs 3]`
// Builds the shape (bench/real-size-shapes.ts, under models/), then times greedy generation on
// the base model on each backend in its own process (bench/real-size-generate-step.ts): prompt
// processing and decoding tokens/s, peak RSS. With PEER_PYTHON (a python with torch and
// transformers) set, transformers' generate() runs the same prompt in the same run
// (bench/peer-generate.py) and ratios are printed. The machine is shared: each line carries the
// 1-minute load average when it finished; only ratios within one run mean anything.
import { execFile } from "node:child_process";
import { loadavg } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ensureRealSizeModel, isShapeName } from "./real-size-shapes.js";

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

interface GenerationFigures {
  backend: string;
  error?: string;
  prefillTokensPerSec: number;
  decodeTokensPerSec: number;
  decodeMsPerToken: number;
  peakRssMiB: number;
  load?: number;
}

const load1 = () => Math.round(loadavg()[0]! * 100) / 100;

async function measure(
  label: string,
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<GenerationFigures> {
  try {
    const { stdout } = await run(file, args, {
      cwd: root,
      env,
      maxBuffer: 64 * 2 ** 20,
      timeout: 3_600_000,
    });
    const r = JSON.parse(stdout.trim().split("\n").at(-1)!) as GenerationFigures;
    return { ...r, backend: r.backend ?? label, load: load1() };
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim().split("\n").at(-1) ?? (e as Error).message;
    return {
      backend: label,
      error: msg.slice(0, 200),
      prefillTokensPerSec: 0,
      decodeTokensPerSec: 0,
      decodeMsPerToken: Number.NaN,
      peakRssMiB: 0,
    };
  }
}

function line(f: GenerationFigures, ref: GenerationFigures | null): string {
  if (f.error) return `  ${f.backend.padEnd(24)} FAILED: ${f.error}`;
  const ratio =
    ref && !ref.error
      ? `  ${(f.prefillTokensPerSec / ref.prefillTokensPerSec).toFixed(2)}× / ${(f.decodeTokensPerSec / ref.decodeTokensPerSec).toFixed(2)}× peer, ${(f.peakRssMiB / ref.peakRssMiB).toFixed(2)}× peer RSS`
      : "";
  return (
    `  ${f.backend.padEnd(24)} prompt processing ${f.prefillTokensPerSec.toFixed(1).padStart(7)} tok/s` +
    `  decoding ${f.decodeTokensPerSec.toFixed(1).padStart(6)} tok/s (${f.decodeMsPerToken.toFixed(1)} ms/token)` +
    `  peak RSS ${f.peakRssMiB} MiB${ratio}  (load ${f.load?.toFixed(2)})`
  );
}

export async function benchGenerateRealSize(opts: {
  shape: string;
  backends: string[];
  prompt: number;
  newTokens: number;
  runs: number;
}): Promise<void> {
  if (!isShapeName(opts.shape))
    throw new Error(`--shape must be one of smollm2-135m, qwen2.5-0.5b, qwen2.5-1.5b`);
  const dir = path.join(root, "models", await ensureRealSizeModel(path.join(root, "models"), opts.shape));
  const sizes = [
    "--prompt",
    String(opts.prompt),
    "--new",
    String(opts.newTokens),
    "--runs",
    String(opts.runs),
  ];
  console.log(
    `${opts.shape}: prompt ${opts.prompt} tokens, ${opts.newTokens} new tokens, greedy, base model, 1 warm-up + ${opts.runs} runs (medians)`,
  );
  console.log(
    `load average before: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
  const python = process.env.PEER_PYTHON;
  const ref = python
    ? await measure(
        "transformers generate()",
        python,
        [path.join(root, "bench/peer-generate.py"), dir, ...sizes],
        process.env,
      )
    : null;
  if (ref) console.log(line({ ...ref, backend: "transformers generate()" }, null));
  else console.log("  no peer (set PEER_PYTHON to a python with torch and transformers to run it)");
  for (const backend of opts.backends) {
    const env = { ...process.env, TFJS_BACKEND: backend, TF_CPP_MIN_LOG_LEVEL: "3" };
    const args = [
      "--import",
      "tsx",
      path.join(root, "bench/real-size-generate-step.ts"),
      "--model",
      dir,
      ...sizes,
    ];
    console.log(line(await measure(backend, process.execPath, args, env), ref));
  }
  console.log(
    `load average after: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
}
