// Micro-benchmark of the matmuls a training step is made of (docs/performance.md):
// a linear layer's forward / dX / dW on [1024,256]×[256,256] and batched attention on
// [32,128,64], under stock tfjs-wasm, wasm + the OpenBLAS override, and the pure-tfjs
// fallback (explicit transposes). Not a test. End-to-end times: tf op + dataSync,
// output allocation included; one warm-up, then the median of --reps runs.
//
//   npm run bench:matmul [-- --reps 15 --cpu --native-only --json]
import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import "@tensorflow/tfjs-backend-cpu";
import { loadBackendOptions } from "../src/config.js";
import { nativeMatmulOptions } from "../worker/engine/backend/backend.js";
import { installNativeMatmul, uninstallNativeMatmul } from "../worker/engine/backend/native-matmul.js";

const args = process.argv.slice(2);
const reps = Number(args[args.indexOf("--reps") + 1]) || 11;
const withCpu = args.includes("--cpu");
const asJson = args.includes("--json");
const nativeOnly = args.includes("--native-only");

interface Case {
  name: string;
  flops: number;
  /** Shapes of the inputs, created once per variant. */
  inputs: number[][];
  /** Variant-specific op; undefined = same as stock. */
  run: (xs: tf.Tensor[]) => tf.Tensor;
  fallback?: (xs: tf.Tensor[]) => tf.Tensor;
}

const [N, D, BH, T, DH] = [1024, 256, 32, 128, 64];
const mm = (a: tf.Tensor, b: tf.Tensor, tA = false, tB = false) => tf.matMul(a, b, tA, tB);
const CASES: Case[] = [
  // Linear layer, W in HF layout [out, in]: y = x·Wᵀ, dX = dy·W, dW = dyᵀ·x.
  {
    name: "linear fwd  x·Wᵀ   [1024,256]×[256,256]ᵀ",
    flops: 2 * N * D * D,
    inputs: [
      [N, D],
      [D, D],
    ],
    run: ([x, w]) => mm(x, w, false, true),
    fallback: ([x, w]) => mm(x, tf.transpose(w)),
  },
  {
    name: "linear dX   dy·W   [1024,256]×[256,256]",
    flops: 2 * N * D * D,
    inputs: [
      [N, D],
      [D, D],
    ],
    run: ([dy, w]) => mm(dy, w),
  },
  {
    name: "linear dW   dyᵀ·x  [1024,256]ᵀ×[1024,256]",
    flops: 2 * N * D * D,
    inputs: [
      [N, D],
      [N, D],
    ],
    run: ([dy, x]) => mm(dy, x, true, false),
    fallback: ([dy, x]) => mm(tf.transpose(dy), x),
  },
  // Attention over B·H = 32 heads of T = 128, dh = 64, forward and backward.
  {
    name: "attn scores q·kᵀ   [32,128,64]×[32,128,64]ᵀ",
    flops: 2 * BH * T * T * DH,
    inputs: [
      [BH, T, DH],
      [BH, T, DH],
    ],
    run: ([q, k]) => mm(q, k, false, true),
  },
  {
    name: "attn out    p·v    [32,128,128]×[32,128,64]",
    flops: 2 * BH * T * T * DH,
    inputs: [
      [BH, T, T],
      [BH, T, DH],
    ],
    run: ([p, v]) => mm(p, v),
  },
  {
    name: "attn dV     pᵀ·dO  [32,128,128]ᵀ×[32,128,64]",
    flops: 2 * BH * T * T * DH,
    inputs: [
      [BH, T, T],
      [BH, T, DH],
    ],
    run: ([p, dO]) => mm(p, dO, true, false),
  },
  {
    name: "attn dK     dSᵀ·q  [32,128,128]ᵀ×[32,128,64]",
    flops: 2 * BH * T * T * DH,
    inputs: [
      [BH, T, T],
      [BH, T, DH],
    ],
    run: ([dS, q]) => mm(dS, q, true, false),
  },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeCase(c: Case, op: (xs: tf.Tensor[]) => tf.Tensor, n: number): number {
  const xs = c.inputs.map((shape) => tf.randomUniform(shape, -1, 1));
  const once = () => {
    const t0 = performance.now();
    const y = tf.tidy(() => op(xs));
    y.dataSync();
    const ms = performance.now() - t0;
    y.dispose();
    return ms;
  };
  once();
  const times = Array.from({ length: n }, once);
  tf.dispose(xs);
  return median(times);
}

function loadAverage(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}

interface Variant {
  name: string;
  backend: "wasm" | "cpu";
  native: boolean;
  useFallback: boolean;
}

async function main() {
  await tf.setBackend("wasm");
  const info = installNativeMatmul(nativeMatmulOptions(loadBackendOptions(), "auto"));
  uninstallNativeMatmul();
  const variants: Variant[] = nativeOnly
    ? []
    : [
        { name: "wasm stock", backend: "wasm", native: false, useFallback: false },
        { name: "wasm fallback (explicit transposes)", backend: "wasm", native: false, useFallback: true },
      ];
  if (info.active)
    variants.push({ name: "wasm + OpenBLAS", backend: "wasm", native: true, useFallback: false });
  if (withCpu) variants.push({ name: "cpu stock", backend: "cpu", native: false, useFallback: false });

  const loadBefore = loadAverage();
  const results: Record<string, Record<string, { ms: number; gflops: number }>> = {};
  for (const v of variants) {
    await tf.setBackend(v.backend);
    if (v.native) installNativeMatmul(nativeMatmulOptions(loadBackendOptions(), "auto"));
    else uninstallNativeMatmul();
    results[v.name] = {};
    for (const c of CASES) {
      const op = v.useFallback && c.fallback ? c.fallback : c.run;
      // The slow paths take seconds per call; fewer repeats keep the run short.
      const n = v.backend === "cpu" ? Math.min(reps, 3) : reps;
      const ms = timeCase(c, op, n);
      results[v.name][c.name] = { ms, gflops: c.flops / ms / 1e6 };
    }
  }
  uninstallNativeMatmul();
  const loadAfter = loadAverage();

  const header = {
    openblasCoretype: info.openblasCoretype ?? null,
    openblasCoretypeSource: info.openblasCoretypeSource ?? null,
    openblasCorename: info.openblasCorename ?? null,
    threads: info.threads ?? null,
    native: info.active ? "active" : `unavailable: ${info.reason}`,
    reps,
    loadavg: { before: loadBefore, after: loadAfter },
  };
  if (asJson) {
    console.log(JSON.stringify({ ...header, results }, null, 2));
    return;
  }
  console.log(JSON.stringify(header));
  const names = variants.map((v) => v.name);
  const pad = (s: string, w: number) => s.padEnd(w);
  console.log(`\nGFLOP/s (median of ${reps}; ms in brackets)\n`);
  console.log(pad("", 46) + names.map((n) => pad(n, 24)).join(""));
  for (const c of CASES) {
    const cells = names.map((n) => {
      const r = results[n][c.name];
      return pad(`${r.gflops.toFixed(1)} (${r.ms.toFixed(2)})`, 24);
    });
    console.log(pad(c.name, 46) + cells.join(""));
  }
}

await main();
