// One generation configuration in its own process (the backend and the peak RSS are per process):
//   tsx bench/real-size-generate-step.ts --model DIR --prompt P --new N --runs R
// Greedy generation with the KV cache, as chat completions run it, on the base model: one warm-up
// then R runs; prompt processing (prefill, until the first token) and decoding (one token per
// forward pass afterwards) timed apart, medians. Prints one JSON line.
import { parseArgs } from "node:util";
import { loadBackendOptions } from "../src/config.js";
import { initBackend } from "../worker/engine/backend/backend.js";
import { generate } from "../worker/engine/generation/generate.js";
import { loadModel } from "../worker/engine/model/load-model.js";
import { Rng } from "../worker/engine/train/rng.js";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    prompt: { type: "string", default: "128" },
    new: { type: "string", default: "32" },
    runs: { type: "string", default: "3" },
  },
});
const [promptLength, newTokens, runs] = [Number(values.prompt), Number(values.new), Number(values.runs)];
const backend = await initBackend(loadBackendOptions());
const t0 = performance.now();
const model = await loadModel(values.model!);
const loadMs = performance.now() - t0;
// ids the tokenizer reaches (the same range as the peer's)
const rng = Rng.fromSeed(5);
const prompt = Array.from({ length: promptLength }, () => 3 + rng.nextInt(447));

async function once(): Promise<{ prefillMs: number; decodeMs: number }> {
  const stamps: number[] = [];
  const start = performance.now();
  await generate(model, prompt, {
    maxNewTokens: newTokens,
    temperature: 0,
    stopTokenIds: [],
    onToken: () => void stamps.push(performance.now()),
  });
  return {
    prefillMs: stamps[0]! - start,
    decodeMs: (stamps.at(-1)! - stamps[0]!) / (stamps.length - 1),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
await once();
const samples: { prefillMs: number; decodeMs: number }[] = [];
for (let r = 0; r < runs; r++) samples.push(await once());
const prefillMs = median(samples.map((s) => s.prefillMs));
const decodeMs = median(samples.map((s) => s.decodeMs));
console.log(
  JSON.stringify({
    backend: `${backend.name}${backend.nativeMatmul ? "+openblas" : ""}`,
    prefillMs: Math.round(prefillMs * 10) / 10,
    prefillTokensPerSec: Math.round((promptLength / prefillMs) * 1000 * 10) / 10,
    decodeMsPerToken: Math.round(decodeMs * 100) / 100,
    decodeTokensPerSec: Math.round((1000 / decodeMs) * 10) / 10,
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    loadMs: Math.round(loadMs),
  }),
);
model.dispose();
process.exit(0);
