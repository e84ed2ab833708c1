import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

/**
 * OpenBLAS reads OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS once, when the library is
 * loaded, so they must be in the environment before the addon is required.
 * Debian's OpenBLAS 0.3.21 does not know newer Xeons and falls back to its SSE3
 * "Prescott" kernels, 5–8× slower than the AVX-512 ones (docs/performance.md).
 */

/** The OpenBLAS DYNAMIC_ARCH core for a set of x86 /proc/cpuinfo flags, best first. */
export function openblasCoretypeForFlags(flags: ReadonlySet<string>): string | undefined {
  if (flags.has("avx512_bf16") && flags.has("avx512f")) return "Cooperlake";
  if (flags.has("avx512f") && flags.has("avx512vl") && flags.has("avx512bw")) return "SkylakeX";
  if (flags.has("avx2") && flags.has("fma")) return "Haswell";
  if (flags.has("avx")) return "SandyBridge";
  if (flags.has("sse4_2")) return "Nehalem";
  if (flags.has("ssse3")) return "Core2";
  return undefined;
}

/** The flags of the first CPU in a /proc/cpuinfo text (x86 "flags" line), empty if none. */
export function cpuFlagsFromCpuinfo(cpuinfo: string): Set<string> {
  const line = cpuinfo.split("\n").find((l) => /^flags\s*:/.test(l));
  return new Set(
    line
      ? line
          .slice(line.indexOf(":") + 1)
          .trim()
          .split(/\s+/)
      : [],
  );
}

function readCpuinfo(): string {
  try {
    return readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return "";
  }
}

export interface OpenblasEnvChoice {
  coretype?: string;
  /** "user": already set; "detected": we set it from the CPU flags; "unknown": left to OpenBLAS. */
  coretypeSource: "user" | "detected" | "unknown";
  threads: number;
  threadsSource: "user" | "default";
}

/**
 * More BLAS threads than this does not pay at the GEMM sizes of our models, and the
 * idle ones spin between calls, taking cores from the JS thread.
 */
const MAX_DEFAULT_THREADS = 16;

/**
 * Fills OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS in `env` where the user has not,
 * and says what was chosen and why. Process-global: call it before loading OpenBLAS.
 */
export function chooseOpenblasEnv(
  env: NodeJS.ProcessEnv = process.env,
  cpuinfo: string = process.arch === "x64" ? readCpuinfo() : "",
  cores: number = availableParallelism(),
): OpenblasEnvChoice {
  let coretype = env.OPENBLAS_CORETYPE || undefined;
  let coretypeSource: OpenblasEnvChoice["coretypeSource"] = coretype ? "user" : "unknown";
  if (!coretype) {
    coretype = openblasCoretypeForFlags(cpuFlagsFromCpuinfo(cpuinfo));
    if (coretype) {
      env.OPENBLAS_CORETYPE = coretype;
      coretypeSource = "detected";
    }
  }
  const userThreads = Number.parseInt(env.OPENBLAS_NUM_THREADS ?? "", 10);
  if (userThreads > 0) return { coretype, coretypeSource, threads: userThreads, threadsSource: "user" };
  const threads = Math.max(1, Math.min(cores, MAX_DEFAULT_THREADS));
  env.OPENBLAS_NUM_THREADS = String(threads);
  return { coretype, coretypeSource, threads, threadsSource: "default" };
}
