import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { planBatchMatMul } from "./batch-matmul-plan.js";
import {
  chooseOpenblasEnv,
  exportOpenblasEnv,
  type OpenblasEnvChoice,
  type OpenblasSettings,
} from "./openblas-env.js";

/**
 * The fast CPU path: tfjs-wasm's BatchMatMul and _FusedMatMul kernels replaced by
 * OpenBLAS cblas_sgemm through a small N-API addon (native/), reading and writing the
 * wasm heap in place. Stock tfjs-wasm sends every transposed or batched matmul to a
 * scalar loop at 1–2 GFLOP/s (docs/performance.md).
 *
 * Process-global side effects, all reported in the returned info: OPENBLAS_CORETYPE and
 * OPENBLAS_NUM_THREADS are set (to the given settings, else chosen from the CPU) before the
 * addon loads, and the two kernels are re-registered for every tfjs user in the process.
 * Mode "off" (TUNEHOUSE_NATIVE_MATMUL=0) disables the addon; "required"
 * (TUNEHOUSE_NATIVE_MATMUL=1) makes its absence an error (for CI of the fast path).
 */

export interface BlasAddon {
  sgemmBatch(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    aBuf: ArrayBuffer,
    aOffsets: Float64Array,
    bBuf: ArrayBuffer,
    bOffsets: Float64Array,
    cBuf: ArrayBuffer,
    cOffset: number,
  ): void;
  info(): { corename: string | null; config: string | null; threads: number };
  setNumThreads(n: number): boolean;
}

export interface NativeMatmulInfo {
  active: boolean;
  reason: string;
  addonPath: string;
  openblasCoretype?: string;
  openblasCoretypeSource?: OpenblasEnvChoice["coretypeSource"];
  /** The kernel set OpenBLAS actually runs (openblas_get_corename). */
  openblasCorename?: string | null;
  openblasConfig?: string | null;
  threads?: number;
  selfCheckMaxError?: number;
}

/** Built by scripts/build-native.mjs (TUNEHOUSE_NATIVE_ADDON points elsewhere: packaging, tests). */
export const DEFAULT_ADDON_PATH = fileURLToPath(
  new URL("../../../native/build/Release/tunehouse_blas.node", import.meta.url),
);

export type NativeMatmulMode = "off" | "auto" | "required";

export interface NativeMatmulOptions {
  /** default "auto": used when it loads and passes its self-check */
  mode?: NativeMatmulMode;
  /** default DEFAULT_ADDON_PATH */
  addonPath?: string;
  /** OpenBLAS core type and threads (default: chosen from the CPU) */
  blas?: OpenblasSettings;
}

/** TUNEHOUSE_NATIVE_MATMUL's values: unset/auto, 0/false/off, 1/true/required. */
export function parseNativeMatmulMode(value: string | undefined): NativeMatmulMode {
  if (value === undefined || value === "" || value === "auto") return "auto";
  if (value === "0" || value === "false" || value === "off") return "off";
  if (value === "1" || value === "true" || value === "required") return "required";
  throw new Error(`TUNEHOUSE_NATIVE_MATMUL must be 0, 1 or auto, got "${value}"`);
}

let loaded: { addon: BlasAddon; env: OpenblasEnvChoice } | undefined;
let loadError: string | undefined;

/** Sets the OpenBLAS environment, then loads the addon (once per process: later calls return the first outcome). */
export function loadBlasAddon(
  addonPath: string = DEFAULT_ADDON_PATH,
  blas: OpenblasSettings = {},
): { addon: BlasAddon; env: OpenblasEnvChoice } {
  if (loaded) return loaded;
  if (loadError) throw new Error(loadError);
  if (!existsSync(addonPath)) {
    loadError = `addon not built (${addonPath} missing; apt-get install libopenblas-dev, then npm run build:native)`;
    throw new Error(loadError);
  }
  const env = chooseOpenblasEnv(blas);
  exportOpenblasEnv(env);
  try {
    const addon = createRequire(import.meta.url)(addonPath) as BlasAddon;
    loaded = { addon, env };
    return loaded;
  } catch (e) {
    loadError = `addon failed to load: ${e instanceof Error ? e.message : String(e)}`;
    throw new Error(loadError);
  }
}

// ---------------------------------------------------------------------------------
// Start-up self-check: a few GEMMs through the addon against a float64 JS reference,
// because some OpenBLAS/CPU pairs give wrong results (env README) and a wrong matmul
// would silently train garbage.

function seededValues(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function referenceGemm(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  tA: boolean,
  tB: boolean,
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[tA ? p * m + i : i * k + p] * b[tB ? j * k + p : p * n + j];
      c[i * n + j] = s;
    }
  }
  return c;
}

/** Max abs error of the addon against the reference over all transpose combinations. */
export function selfCheckBlas(addon: BlasAddon): number {
  const [m, n, k, batch] = [37, 53, 131, 2];
  let maxErr = 0;
  for (const tA of [false, true]) {
    for (const tB of [false, true]) {
      // A batch of two A matrices against one shared B, all in one buffer with a
      // deliberately unaligned-to-the-matrix start, as on the wasm heap.
      const a = seededValues(batch * m * k, 1 + Number(tA) + 2 * Number(tB));
      const b = seededValues(k * n, 7 + Number(tA) + 2 * Number(tB));
      const base = 16;
      const heap = new Float32Array(base + a.length + b.length + batch * m * n);
      heap.set(a, base);
      heap.set(b, base + a.length);
      const cStart = base + a.length + b.length;
      const aOffsets = Float64Array.from({ length: batch }, (_, i) => (base + i * m * k) * 4);
      const bOffsets = new Float64Array(batch).fill((base + a.length) * 4);
      addon.sgemmBatch(
        tA,
        tB,
        m,
        n,
        k,
        heap.buffer,
        aOffsets,
        heap.buffer,
        bOffsets,
        heap.buffer,
        cStart * 4,
      );
      for (let i = 0; i < batch; i++) {
        const ref = referenceGemm(a.subarray(i * m * k, (i + 1) * m * k), b, m, n, k, tA, tB);
        for (let j = 0; j < ref.length; j++) {
          maxErr = Math.max(maxErr, Math.abs(heap[cStart + i * m * n + j] - ref[j]));
        }
      }
    }
  }
  return maxErr;
}

// float32 rounding on sums of ~131 products of magnitude ≤ 1 stays far below this.
const SELF_CHECK_TOLERANCE = 1e-3;

// ---------------------------------------------------------------------------------
// The kernels. They use tfjs-backend-wasm internals (dataIdMap, makeOutput, the heap),
// pinned with the tfjs version in package.json.

type DataId = object;
interface WasmBackendInternals {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: DataId): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
}

interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function heapOffset(backend: WasmBackendInternals, t: tf.TensorInfo): number {
  const data = backend.dataIdMap.get(t.dataId);
  if (!data) throw new Error(`native matmul: tensor of shape [${t.shape}] is not on the wasm backend`);
  return data.memoryOffset;
}

function gemmOnHeap(
  addon: BlasAddon,
  backend: WasmBackendInternals,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): tf.TensorInfo {
  const plan = planBatchMatMul(a.shape, b.shape, transposeA, transposeB);
  const out = backend.makeOutput(plan.outShape, "float32");
  // Read the heap only now: allocating the output may grow (and detach) it.
  const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
  const aBase = heapOffset(backend, a);
  const bBase = heapOffset(backend, b);
  const cBase = heapOffset(backend, out);
  const { m, n, k } = plan;
  if (plan.foldBatchIntoM) {
    const rows = m * plan.aIndex.length;
    addon.sgemmBatch(
      false,
      transposeB,
      rows,
      n,
      k,
      heap,
      new Float64Array([aBase]),
      heap,
      new Float64Array([bBase]),
      heap,
      cBase,
    );
    return out;
  }
  const aOffsets = Float64Array.from(plan.aIndex, (i) => aBase + i * m * k * 4);
  const bOffsets = Float64Array.from(plan.bIndex, (i) => bBase + i * k * n * 4);
  addon.sgemmBatch(transposeA, transposeB, m, n, k, heap, aOffsets, heap, bOffsets, heap, cBase);
  return out;
}

const ACTIVATION_KERNELS: Record<string, string | undefined> = {
  relu: "Relu",
  relu6: "Relu6",
  elu: "Elu",
  sigmoid: "Sigmoid",
  leakyrelu: "LeakyRelu",
  prelu: "Prelu",
};

function runWasmKernel(
  name: string,
  inputs: tf.NamedTensorInfoMap,
  backend: unknown,
  attrs: tf.NamedAttrMap = {},
) {
  const kernel = tf.getKernel(name, "wasm");
  if (!kernel) throw new Error(`native matmul: wasm kernel ${name} is not registered`);
  return kernel.kernelFunc({ inputs, backend: backend as object, attrs }) as tf.TensorInfo;
}

interface Installed {
  addon: BlasAddon;
  originals: tf.KernelConfig[];
}
let installed: Installed | undefined;

function makeKernels(addon: BlasAddon, originals: Map<string, tf.KernelConfig>): tf.KernelConfig[] {
  const batchMatMul = (args: KernelArgs) => {
    const { a, b } = args.inputs;
    if (a.dtype !== "float32" || b.dtype !== "float32")
      return originals.get("BatchMatMul")!.kernelFunc(args as any);
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    return gemmOnHeap(addon, args.backend as WasmBackendInternals, a, b, !!transposeA, !!transposeB);
  };
  const fusedMatMul = (args: KernelArgs) => {
    const { a, b } = args.inputs;
    const { bias, preluActivationWeights } = args.inputs as Partial<Record<string, tf.TensorInfo>>;
    if (a.dtype !== "float32" || b.dtype !== "float32")
      return originals.get("_FusedMatMul")!.kernelFunc(args as any);
    const attrs = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    const backend = args.backend as WasmBackendInternals;
    const activation = attrs.activation ?? "linear";
    const activationKernel = ACTIVATION_KERNELS[activation];
    if (activation !== "linear" && !activationKernel) {
      throw new Error(`native _FusedMatMul: unsupported activation "${activation}"`);
    }
    let current = gemmOnHeap(addon, backend, a, b, !!attrs.transposeA, !!attrs.transposeB);
    if (bias) {
      const next = runWasmKernel("Add", { a: current, b: bias }, backend);
      backend.disposeData(current.dataId);
      current = next;
    }
    if (activationKernel) {
      const inputs: tf.NamedTensorInfoMap = { x: current };
      if (activation === "prelu") inputs.alpha = preluActivationWeights;
      const next = runWasmKernel(activationKernel, inputs, backend, { alpha: attrs.leakyreluAlpha ?? 0.2 });
      backend.disposeData(current.dataId);
      current = next;
    }
    return current;
  };
  const setup = (name: string) => originals.get(name)?.setupFunc;
  return [
    {
      kernelName: "BatchMatMul",
      backendName: "wasm",
      kernelFunc: batchMatMul as any,
      setupFunc: setup("BatchMatMul"),
    },
    {
      kernelName: "_FusedMatMul",
      backendName: "wasm",
      kernelFunc: fusedMatMul as any,
      setupFunc: setup("_FusedMatMul"),
    },
  ];
}

function registerOverrides(addon: BlasAddon): void {
  const originals = new Map<string, tf.KernelConfig>();
  for (const name of ["BatchMatMul", "_FusedMatMul"]) {
    const original = tf.getKernel(name, "wasm");
    if (!original)
      throw new Error(`wasm kernel ${name} is not registered: import @tensorflow/tfjs-backend-wasm first`);
    originals.set(name, original);
  }
  for (const config of makeKernels(addon, originals)) {
    tf.unregisterKernel(config.kernelName, "wasm");
    tf.registerKernel(config);
  }
  installed = { addon, originals: [...originals.values()] };
}

/** Whether BatchMatMul/_FusedMatMul on wasm currently run through OpenBLAS. */
export function isNativeMatmulInstalled(): boolean {
  return installed !== undefined;
}

/** Restores tfjs-wasm's own kernels (benchmarks and tests compare both). */
export function uninstallNativeMatmul(): void {
  if (!installed) return;
  for (const original of installed.originals) {
    tf.unregisterKernel(original.kernelName, "wasm");
    tf.registerKernel(original);
  }
  installed = undefined;
}

let lastInfo: NativeMatmulInfo | undefined;

/**
 * Loads the addon, self-checks it and overrides the wasm matmul kernels. Idempotent:
 * later calls return the first outcome (re-installing after `uninstallNativeMatmul`).
 * Never throws unless the mode is "required"; `active: false` comes with the reason.
 */
export function installNativeMatmul(options: NativeMatmulOptions = {}): NativeMatmulInfo {
  if (installed && lastInfo?.active) return lastInfo;
  const info = tryInstall(options);
  lastInfo = info;
  if (!info.active && options.mode === "required") {
    throw new Error(`TUNEHOUSE_NATIVE_MATMUL=1 but the native matmul is unavailable: ${info.reason}`);
  }
  return info;
}

function tryInstall(options: NativeMatmulOptions): NativeMatmulInfo {
  const addonPath = options.addonPath ?? DEFAULT_ADDON_PATH;
  if (options.mode === "off")
    return { active: false, reason: "disabled by TUNEHOUSE_NATIVE_MATMUL=0", addonPath };
  let addon: BlasAddon;
  let env: OpenblasEnvChoice;
  try {
    ({ addon, env } = loadBlasAddon(addonPath, options.blas));
  } catch (e) {
    return { active: false, reason: e instanceof Error ? e.message : String(e), addonPath };
  }
  const blas = addon.info();
  const base: NativeMatmulInfo = {
    active: false,
    reason: "",
    addonPath,
    openblasCoretype: env.coretype,
    openblasCoretypeSource: env.coretypeSource,
    openblasCorename: blas.corename,
    openblasConfig: blas.config,
    threads: blas.threads > 0 ? blas.threads : env.threads,
  };
  const maxErr = selfCheckBlas(addon);
  base.selfCheckMaxError = maxErr;
  if (!(maxErr <= SELF_CHECK_TOLERANCE)) {
    return { ...base, reason: `self-check failed: max abs error ${maxErr} > ${SELF_CHECK_TOLERANCE}` };
  }
  try {
    registerOverrides(addon);
  } catch (e) {
    return { ...base, reason: e instanceof Error ? e.message : String(e) };
  }
  return {
    ...base,
    active: true,
    reason: `OpenBLAS ${blas.corename ?? "?"} kernels, self-check max error ${maxErr.toExponential(1)}`,
  };
}
