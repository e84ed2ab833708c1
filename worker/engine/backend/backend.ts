import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { installContiguousSliceKernel } from "./contiguous-slice-kernel.js";
import {
  installNativeMatmul,
  type NativeMatmulInfo,
  type NativeMatmulMode,
  type NativeMatmulOptions,
} from "./native-matmul.js";
import { installSharedBufferKernels } from "./shared-buffer-kernels.js";
import { ensureGradientsRegistered } from "./tfjs-gradients.js";

/**
 * Chooses the tfjs backend once per process (`backend`: auto|tensorflow|wasm|cpu; the service's
 * TFJS_BACKEND):
 * - tensorflow: @tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node (optional
 *   dependencies; their install downloads libtensorflow, so on most of our machines
 *   they are absent or fail to load — that is reported, not thrown, under auto).
 * - wasm: tfjs-backend-wasm plus, when the addon loads and passes its self-check, the
 *   OpenBLAS matmul kernels (native-matmul.ts); without it, linear() switches to its
 *   explicit-transpose gradient (model/linear.ts).
 * - cpu: tfjs-backend-cpu, the slowest; last resort.
 * auto = tensorflow if it loads, else wasm, else cpu.
 */

export type BackendPreference = "auto" | "tensorflow" | "wasm" | "cpu";
export type BackendName = "tensorflow" | "wasm" | "cpu";

/** How to set up the backend; the caller reads them from its configuration (defaults: auto everything). */
export interface BackendOptions {
  /** default "auto" */
  backend?: BackendPreference;
  /** the OpenBLAS matmul on wasm (default "auto"; see native-matmul.ts) */
  nativeMatmul?: NativeMatmulMode;
  /** the addon's path (default: the one `npm run build:native` builds) */
  nativeAddonPath?: string;
  /**
   * OpenBLAS core type and thread count (default: chosen from the CPU); written to OpenBLAS's
   * environment before it loads, so pass the user's OPENBLAS_CORETYPE / OPENBLAS_NUM_THREADS here
   */
  blasCoretype?: string;
  blasThreads?: number;
}

export interface BackendInfo {
  name: BackendName;
  requested: BackendPreference;
  /** BatchMatMul/_FusedMatMul run through OpenBLAS (wasm only). */
  nativeMatmul: boolean;
  /** How linear() computes its gradient on this backend. */
  linear: "matmul" | "explicit-transpose";
  /** The tfjs-node package that provides `tensorflow`. */
  tensorflowPackage?: string;
  openblasCoretype?: string;
  openblasCoretypeSource?: NativeMatmulInfo["openblasCoretypeSource"];
  openblasCorename?: string | null;
  threads?: number;
  /** One line for the log: why this backend, and why not the faster ones. */
  reason: string;
  /** Set when training runs on a slow fallback: what it costs and the command that fixes it. */
  slowFallback?: string;
}

const SLOW_FALLBACK_PREFIX = "Training on a slow fallback backend:";
const FIX =
  "Fix: `npm run build:tfjs-node` (builds the tensorflow backend; needs pip, unzip and build-essential), " +
  "or at least `apt-get install libopenblas-dev && npm run build:native`, then restart the worker.";

const PREFERENCES: readonly BackendPreference[] = ["auto", "tensorflow", "wasm", "cpu"];

export function parseBackendPreference(value: string): BackendPreference {
  const v = value.trim().toLowerCase();
  if ((PREFERENCES as readonly string[]).includes(v)) return v as BackendPreference;
  throw new Error(`TFJS_BACKEND must be one of ${PREFERENCES.join(", ")}; got "${value}"`);
}

function errorLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0].slice(0, 200);
}

/**
 * A package whose native binding was never built (npm dropped its failed install, or it was
 * installed without scripts) is not imported at all: a half-loaded tfjs-node registers its
 * kernels and then throws, and the next package would re-register every one of them.
 */
function bindingMissing(pkg: string): string | null {
  let dir: string;
  try {
    dir = path.dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  } catch {
    return "not installed";
  }
  const lib = path.join(dir, "lib");
  const built =
    existsSync(lib) && readdirSync(lib).some((d) => existsSync(path.join(lib, d, "tfjs_binding.node")));
  return built ? null : "installed, but its native binding is not built (npm run build:tfjs-node)";
}

async function tryTensorflow(): Promise<{ ok: true; pkg: string } | { ok: false; why: string }> {
  const failures: string[] = [];
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    const missing = bindingMissing(pkg);
    if (missing) {
      failures.push(`${pkg}: ${missing}`);
      continue;
    }
    try {
      // A string variable keeps TypeScript from resolving these optional packages.
      const specifier: string = pkg;
      await import(specifier);
    } catch (e) {
      failures.push(`${pkg}: ${errorLine(e)}`);
      continue;
    }
    // tfjs keeps its engine and kernel registry on the global object, so a second copy
    // of tfjs-core inside tfjs-node still registers into ours; check rather than assume.
    if (!tf.findBackendFactory("tensorflow")) {
      failures.push(`${pkg}: loaded, but no "tensorflow" backend is registered in this tfjs-core`);
      continue;
    }
    try {
      if (await tf.setBackend("tensorflow")) return { ok: true, pkg };
      failures.push(`${pkg}: the tensorflow backend failed to initialise`);
    } catch (e) {
      failures.push(`${pkg}: ${errorLine(e)}`);
    }
  }
  return { ok: false, why: failures.join("; ") };
}

async function trySetBackend(name: "wasm" | "cpu"): Promise<string | null> {
  try {
    if (name === "wasm") await import("@tensorflow/tfjs-backend-wasm");
    else await import("@tensorflow/tfjs-backend-cpu");
    return (await tf.setBackend(name)) ? null : `${name} backend failed to initialise`;
  } catch (e) {
    return `${name}: ${errorLine(e)}`;
  }
}

function wasmInfo(requested: BackendPreference, native: NativeMatmulInfo, prefix: string): BackendInfo {
  const base = {
    name: "wasm" as const,
    requested,
    nativeMatmul: native.active,
    openblasCoretype: native.openblasCoretype,
    openblasCoretypeSource: native.openblasCoretypeSource,
    openblasCorename: native.openblasCorename,
    threads: native.threads,
  };
  return native.active
    ? { ...base, linear: "matmul", reason: `${prefix}wasm + native matmul: ${native.reason}` }
    : {
        ...base,
        linear: "explicit-transpose",
        reason: `${prefix}wasm with the explicit-transpose linear gradient (native matmul unavailable: ${native.reason})`,
        slowFallback: `${SLOW_FALLBACK_PREFIX} pure wasm, about 50× slower than tensorflow at real size. ${FIX}`,
      };
}

/** The native-matmul part of the backend options (mode default "auto"). */
export function nativeMatmulOptions(
  options: BackendOptions,
  mode = options.nativeMatmul ?? "auto",
): NativeMatmulOptions {
  const blas = { coretype: options.blasCoretype, threads: options.blasThreads };
  return { mode, addonPath: options.nativeAddonPath, blas };
}

async function select(requested: BackendPreference, options: BackendOptions): Promise<BackendInfo> {
  const skipped: string[] = [];
  if (requested === "tensorflow" || requested === "auto") {
    const t = await tryTensorflow();
    if (t.ok) {
      return {
        name: "tensorflow",
        requested,
        nativeMatmul: false,
        linear: "matmul",
        tensorflowPackage: t.pkg,
        reason: `${t.pkg} loaded`,
      };
    }
    if (requested === "tensorflow")
      throw new Error(`TFJS_BACKEND=tensorflow but it cannot be used: ${t.why}`);
    skipped.push(`tensorflow unavailable (${t.why})`);
  }
  if (requested === "wasm" || requested === "auto") {
    const failure = await trySetBackend("wasm");
    if (!failure) {
      // Identity/Cast share buffers instead of copying them (shared-buffer-kernels.ts).
      installSharedBufferKernels();
      // Slice copies only the slice, not the whole input (contiguous-slice-kernel.ts).
      installContiguousSliceKernel();
      // Throws only when nativeMatmul "required" (TUNEHOUSE_NATIVE_MATMUL=1) demands the fast path.
      const native = installNativeMatmul(nativeMatmulOptions(options));
      return wasmInfo(requested, native, skipped.length ? `${skipped.join("; ")}; ` : "");
    }
    if (requested === "wasm") throw new Error(`TFJS_BACKEND=wasm but it cannot be used: ${failure}`);
    skipped.push(failure);
  }
  const failure = await trySetBackend("cpu");
  if (failure) throw new Error(`no tfjs backend could be initialised: ${[...skipped, failure].join("; ")}`);
  const why = requested === "cpu" ? "requested" : skipped.join("; ");
  return {
    name: "cpu",
    requested,
    nativeMatmul: false,
    linear: "matmul",
    reason: `cpu (${why}); slow for training`,
    slowFallback: `${SLOW_FALLBACK_PREFIX} tfjs cpu, hundreds of times slower than tensorflow. ${FIX}`,
  };
}

const chosen = new Map<BackendPreference, BackendInfo>();
let configured: BackendOptions = {};

/**
 * Sets the options a later initBackend() without options uses, and loads nothing: an entry point
 * calls it with its configuration so that library code (serving, jobs) that sets up the backend
 * on first use gets the configured one.
 */
export function configureBackend(options: BackendOptions): void {
  configured = options;
}

/**
 * Sets up the tfjs backend (and tfjs-core's gradients, see tfjs-gradients.ts) and
 * returns what was chosen, for the caller to log once. Without options: those of the last
 * configureBackend() or initBackend(options) call, else the defaults.
 * Idempotent: a repeated call with the same preference returns the same info (and
 * re-activates that backend if something switched away from it).
 */
export async function initBackend(options?: BackendOptions): Promise<BackendInfo> {
  if (options) configured = options;
  const opts = options ?? configured;
  const requested = opts.backend ?? "auto";
  const previous = chosen.get(requested);
  if (previous) {
    if (tf.getBackend() !== previous.name) await tf.setBackend(previous.name);
    if (previous.name === "wasm") {
      installSharedBufferKernels();
      installContiguousSliceKernel();
    }
    if (previous.name === "wasm" && previous.nativeMatmul)
      installNativeMatmul(nativeMatmulOptions(opts, "auto"));
    return previous;
  }
  const info = await select(requested, opts);
  await tf.ready();
  ensureGradientsRegistered();
  chosen.set(requested, info);
  return info;
}
