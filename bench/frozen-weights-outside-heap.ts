// Measurement for the wasm ceiling (not a test): `tsx bench/frozen-weights-outside-heap.ts`.
// The candidate: frozen base weights kept in native memory (plain ArrayBuffers outside the 4 GiB
// wasm32 heap), read by our OpenBLAS matmul through an op with its own gradient. Prints
//   1. what the frozen weights of each real-size shape take of the 4 GiB heap, against our
//      estimate of the whole job's peak, with the weights on the heap and off it;
//   2. whether the addon's sgemm reads a weight matrix from a buffer that is not the heap, and
//      at what speed against the same matrix on a wasm memory (the projections' shapes at 1 × 512).
import { loadavg } from "node:os";
import { loadBlasAddon } from "../worker/engine/backend/native-matmul.js";
import { parseModelConfig } from "../worker/engine/hf/config.js";
import { LORA_TARGET_MODULES } from "../worker/engine/lora/lora-targets.js";
import {
  baseParameterCount,
  estimateTrainingMemory,
  WASM_HEAP_BYTES,
} from "../worker/engine/train/memory-estimate.js";
import { SHAPES, type ShapeName } from "./real-size-shapes.js";

const GiB = 2 ** 30;
// the DOM-less lib has no WebAssembly types; a Memory's buffer is what the wasm heap is
const { Memory } = (
  globalThis as unknown as {
    WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } };
  }
).WebAssembly;
console.log(
  `load average: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}`,
);
console.log("1. frozen fp32 weights against the 4 GiB wasm heap (LoRA r8, all seven projections):");
for (const [shape, rowsSeq] of [
  ["smollm2-135m", [4, 256]],
  ["qwen2.5-0.5b", [1, 512]],
  ["qwen2.5-1.5b", [1, 512]],
] as [ShapeName, [number, number]][]) {
  const config = parseModelConfig({ ...SHAPES[shape], hidden_act: "silu" });
  const weights = baseParameterCount(config) * 4;
  const est = estimateTrainingMemory({
    config,
    method: "lora",
    loraRank: 8,
    loraTargets: [...LORA_TARGET_MODULES],
    microBatch: rowsSeq[0],
    seqLen: rowsSeq[1],
    backend: "wasm",
    gradientCheckpointing: true,
  });
  const rest = est.totalBytes - weights;
  console.log(
    `  ${shape.padEnd(13)} ${rowsSeq.join(" × ")}: weights ${(weights / GiB).toFixed(2)} GiB = ${((100 * weights) / WASM_HEAP_BYTES).toFixed(0)}% of the heap; ` +
      `estimated peak ${(est.totalBytes / GiB).toFixed(2)} GiB with them on the heap, ${(rest / GiB).toFixed(2)} GiB (${((100 * rest) / WASM_HEAP_BYTES).toFixed(0)}%) without`,
  );
}

const { addon } = loadBlasAddon();
function fill(a: Float32Array, seed: number): Float32Array {
  let s = seed;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}
console.log(
  "2. y[T × N] = x[T × K] · Wᵀ, W [N × K] on a wasm memory vs in a separate ArrayBuffer (median of 5):",
);
for (const [name, T, N, K] of [
  ["0.5B up_proj", 512, 4864, 896],
  ["1.5B up_proj", 512, 8960, 1536],
  ["1.5B down_proj", 512, 1536, 8960],
  ["1.5B lm head chunk", 128, 151936, 1536],
] as [string, number, number, number][]) {
  const bytes = 4 * (T * K + N * K + T * N);
  const memory = new Memory({ initial: Math.ceil(bytes / 65536) + 1 });
  const heap = memory.buffer;
  const x = fill(new Float32Array(heap, 0, T * K), 1);
  fill(new Float32Array(heap, 4 * T * K, N * K), 2);
  const outside = new Float32Array(N * K);
  outside.set(new Float32Array(heap, 4 * T * K, N * K));
  const yOff = 4 * (T * K + N * K);
  const time = (wBuf: ArrayBuffer, wOff: number): number => {
    const ms: number[] = [];
    for (let r = 0; r < 6; r++) {
      const t0 = performance.now();
      addon.sgemmBatch(
        false,
        true,
        T,
        N,
        K,
        heap,
        new Float64Array([0]),
        wBuf,
        new Float64Array([wOff]),
        heap,
        yOff,
      );
      ms.push(performance.now() - t0);
    }
    return ms.slice(1).sort((a, b) => a - b)[2]!;
  };
  const onHeap = time(heap, 4 * T * K);
  const yHeap = new Float32Array(heap, yOff, T * N).slice();
  const offHeap = time(outside.buffer, 0);
  const yOut = new Float32Array(heap, yOff, T * N);
  let diff = 0;
  for (let i = 0; i < yOut.length; i++) diff = Math.max(diff, Math.abs(yOut[i]! - yHeap[i]!));
  const gflops = (ms: number) => ((2 * T * N * K) / ms / 1e6).toFixed(0);
  console.log(
    `  ${name.padEnd(19)} ${T}×${N}×${K}: on the heap ${onHeap.toFixed(1)} ms (${gflops(onHeap)} GFLOP/s), outside ${offHeap.toFixed(1)} ms (${gflops(offHeap)} GFLOP/s), max |Δ| ${diff}`,
  );
  void x;
}
console.log(
  `load average after: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}`,
);
