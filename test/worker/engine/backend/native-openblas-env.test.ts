import assert from "node:assert/strict";
import { test } from "node:test";
import {
  chooseOpenblasEnv,
  cpuFlagsFromCpuinfo,
  exportOpenblasEnv,
  openblasCoretypeForFlags,
} from "../../../../worker/engine/backend/openblas-env.js";

const cpuinfo = (flags: string) =>
  `processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: ${flags}\nbugs\t\t: spectre_v1\n\nprocessor\t: 1\nflags\t\t: fpu\n`;

test("coretype follows the best instruction set in the CPU flags", () => {
  const pick = (flags: string) => openblasCoretypeForFlags(cpuFlagsFromCpuinfo(cpuinfo(flags)));
  assert.equal(
    pick("fpu sse3 ssse3 sse4_2 avx avx2 fma avx512f avx512vl avx512bw avx512_bf16"),
    "Cooperlake",
  );
  assert.equal(pick("fpu sse3 ssse3 sse4_2 avx avx2 fma avx512f avx512vl avx512bw"), "SkylakeX");
  assert.equal(pick("fpu sse3 ssse3 sse4_2 avx avx2 fma"), "Haswell");
  assert.equal(pick("fpu sse3 ssse3 sse4_2 avx"), "SandyBridge");
  assert.equal(pick("fpu sse3 ssse3 sse4_2"), "Nehalem");
  assert.equal(pick("fpu sse3"), undefined);
  assert.equal(openblasCoretypeForFlags(cpuFlagsFromCpuinfo("")), undefined, "no flags line (e.g. ARM)");
});

test("only the first CPU's flags line is read", () => {
  assert.ok(cpuFlagsFromCpuinfo(cpuinfo("avx2 fma")).has("avx2"));
  assert.equal(cpuFlagsFromCpuinfo(cpuinfo("avx2 fma")).has("fpu"), false);
});

test("chooses OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS when not given, and writes them", () => {
  const choice = chooseOpenblasEnv({}, cpuinfo("avx avx2 fma avx512f avx512_bf16"), 2);
  assert.deepEqual(choice, {
    coretype: "Cooperlake",
    coretypeSource: "detected",
    threads: 2,
    threadsSource: "default",
  });
  const env: NodeJS.ProcessEnv = {};
  exportOpenblasEnv(choice, env);
  assert.equal(env.OPENBLAS_CORETYPE, "Cooperlake");
  assert.equal(env.OPENBLAS_NUM_THREADS, "2");
});

test("keeps the user's settings; caps the default thread count", () => {
  const choice = chooseOpenblasEnv({ coretype: "Haswell", threads: 1 }, cpuinfo("avx512f avx512_bf16"), 64);
  assert.deepEqual(choice, {
    coretype: "Haswell",
    coretypeSource: "user",
    threads: 1,
    threadsSource: "user",
  });
  const env: NodeJS.ProcessEnv = {};
  exportOpenblasEnv(choice, env);
  assert.deepEqual(env, { OPENBLAS_CORETYPE: "Haswell", OPENBLAS_NUM_THREADS: "1" });
  const many = chooseOpenblasEnv({}, "", 64);
  assert.equal(many.threads, 16);
  assert.equal(many.coretype, undefined, "unknown CPU: left to OpenBLAS");
  const unknown: NodeJS.ProcessEnv = {};
  exportOpenblasEnv(many, unknown);
  assert.equal(unknown.OPENBLAS_CORETYPE, undefined);
});
