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

/** The user's OpenBLAS settings (their OPENBLAS_CORETYPE / OPENBLAS_NUM_THREADS); unset = we choose. */
export interface OpenblasSettings {
  coretype?: string;
  threads?: number;
}

export interface OpenblasEnvChoice {
  coretype?: string;
  /** "user": given in the settings; "detected": chosen from the CPU flags; "unknown": left to OpenBLAS. */
  coretypeSource: "user" | "detected" | "unknown";
  threads: number;
  threadsSource: "user" | "default";
}

/**
 * More BLAS threads than this does not pay at the GEMM sizes of our models, and the
 * idle ones spin between calls, taking cores from the JS thread.
 */
const MAX_DEFAULT_THREADS = 16;

/** What OpenBLAS should run with: the user's settings where given, else chosen from this CPU. */
export function chooseOpenblasEnv(
  settings: OpenblasSettings = {},
  cpuinfo: string = process.arch === "x64" ? readCpuinfo() : "",
  cores: number = availableParallelism(),
): OpenblasEnvChoice {
  const userCoretype = settings.coretype || undefined;
  const coretype = userCoretype ?? openblasCoretypeForFlags(cpuFlagsFromCpuinfo(cpuinfo));
  const coretypeSource = userCoretype ? "user" : coretype ? "detected" : "unknown";
  const userThreads =
    settings.threads !== undefined && settings.threads > 0 ? Math.floor(settings.threads) : 0;
  if (userThreads > 0) return { coretype, coretypeSource, threads: userThreads, threadsSource: "user" };
  const threads = Math.max(1, Math.min(cores, MAX_DEFAULT_THREADS));
  return { coretype, coretypeSource, threads, threadsSource: "default" };
}

/**
 * Writes the choice where OpenBLAS reads it (its own environment variables). Process-global:
 * call it before loading OpenBLAS.
 */
export function exportOpenblasEnv(choice: OpenblasEnvChoice, env: NodeJS.ProcessEnv = process.env): void {
  if (choice.coretype) env.OPENBLAS_CORETYPE = choice.coretype;
  env.OPENBLAS_NUM_THREADS = String(choice.threads);
}
