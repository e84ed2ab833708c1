// initBackend() in child processes, one per environment, since the choice and the
// OpenBLAS environment are process-global.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseBackendPreference } from "../../../../worker/engine/backend/backend.js";
import { DEFAULT_ADDON_PATH } from "../../../../worker/engine/backend/native-matmul.js";
import { testBackendOptions } from "../../../support/engine-backend.js";

const probe = fileURLToPath(new URL("./backend-probe.ts", import.meta.url));
// What this run expects of the fast path (the suite also runs with TUNEHOUSE_NATIVE_MATMUL=0).
const options = testBackendOptions();
const nativeSkip =
  options.nativeMatmul === "off"
    ? "TUNEHOUSE_NATIVE_MATMUL=0"
    : existsSync(options.nativeAddonPath ?? DEFAULT_ADDON_PATH)
      ? false
      : "addon not built";
const addonBuilt = nativeSkip === false;

async function runProbe(env: Record<string, string | undefined>): Promise<any> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", probe], {
    env: childEnv,
    timeout: 60_000,
  });
  const line = stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(line);
}

// tfjs-node counts only with its native binding built (its own install, or build-tfjs-node.mjs)
function tensorflowLoads(): boolean {
  const require = createRequire(import.meta.url);
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    try {
      const dir = path.dirname(require.resolve(`${pkg}/package.json`));
      if (existsSync(path.join(dir, "lib", "napi-v8", "tfjs_binding.node"))) return true;
    } catch {}
  }
  return false;
}

const DW = [1, 2, 3, 1, 2, 3]; // d Σ(x·Wᵀ) / dW for x = [1, 2, 3], two output rows

test("TFJS_BACKEND values are validated", () => {
  assert.equal(parseBackendPreference(" WASM "), "wasm");
  assert.throws(
    () => parseBackendPreference("gpu"),
    /TFJS_BACKEND must be one of auto, tensorflow, wasm, cpu; got "gpu"/,
  );
});

test("cpu: plain matMul linear; gradients registered; idempotent", async () => {
  const r = await runProbe({ TFJS_BACKEND: "cpu" });
  assert.equal(r.error, undefined);
  assert.equal(r.info.name, "cpu");
  assert.equal(r.backend, "cpu");
  assert.equal(r.info.nativeMatmul, false);
  assert.equal(r.info.linear, "matmul");
  assert.equal(r.same, true);
  assert.deepEqual(r.grad, DW);
  assert.match(r.info.slowFallback, /slow fallback backend: tfjs cpu.*npm run build:tfjs-node/);
});

test("wasm with TUNEHOUSE_NATIVE_MATMUL=0: the explicit-transpose fallback", async () => {
  const r = await runProbe({ TFJS_BACKEND: "wasm", TUNEHOUSE_NATIVE_MATMUL: "0" });
  assert.equal(r.info.name, "wasm");
  assert.equal(r.info.nativeMatmul, false);
  assert.equal(r.info.linear, "explicit-transpose");
  assert.match(r.info.reason, /TUNEHOUSE_NATIVE_MATMUL=0/);
  assert.deepEqual(r.grad, DW);
  assert.match(r.info.slowFallback, /slow fallback backend: pure wasm.*npm run build:tfjs-node/);
});

test("auto: tensorflow when it loads, else wasm (+ native when built)", async () => {
  const r = await runProbe({ TFJS_BACKEND: undefined });
  assert.equal(r.error, undefined);
  if (tensorflowLoads()) {
    assert.equal(r.info.name, "tensorflow");
    assert.equal(r.backend, "tensorflow");
    assert.equal(r.info.slowFallback, undefined);
    assert.deepEqual(r.grad, DW);
    return;
  }
  assert.equal(r.info.name, "wasm");
  assert.match(
    r.info.reason,
    /tensorflow unavailable \(@tensorflow\/tfjs-node-gpu: .*@tensorflow\/tfjs-node: /,
  );
  assert.equal(r.info.nativeMatmul, addonBuilt);
  assert.deepEqual(r.grad, DW);
});

test("tensorflow requested and built: tfjs-node runs linear() and its gradient", {
  skip: !tensorflowLoads() && "tfjs-node not built",
}, async () => {
  const r = await runProbe({ TFJS_BACKEND: "tensorflow", TF_CPP_MIN_LOG_LEVEL: "3" });
  assert.equal(r.error, undefined);
  assert.equal(r.info.tensorflowPackage, "@tensorflow/tfjs-node");
  assert.equal(r.same, true);
  assert.deepEqual(r.grad, DW);
});

test("tensorflow requested but not installed: a clear error naming both packages", {
  skip: tensorflowLoads(),
}, async () => {
  const r = await runProbe({ TFJS_BACKEND: "tensorflow" });
  assert.match(
    r.error,
    /TFJS_BACKEND=tensorflow but it cannot be used: @tensorflow\/tfjs-node-gpu: .*; @tensorflow\/tfjs-node: /,
  );
});

test("native: OPENBLAS_CORETYPE chosen from the CPU, or the user's kept", { skip: nativeSkip }, async () => {
  const auto = await runProbe({
    TFJS_BACKEND: "wasm",
    OPENBLAS_CORETYPE: undefined,
    OPENBLAS_NUM_THREADS: undefined,
  });
  assert.equal(auto.info.nativeMatmul, true, auto.info.reason);
  assert.equal(auto.info.linear, "matmul");
  assert.ok(auto.env.OPENBLAS_NUM_THREADS, "thread count made explicit");
  if (auto.info.openblasCoretype) {
    assert.equal(auto.info.openblasCoretypeSource, "detected");
    assert.equal(
      auto.info.openblasCorename,
      auto.info.openblasCoretype,
      "OpenBLAS runs the kernels we chose",
    );
  }
  assert.deepEqual(auto.grad, DW);
  const user = await runProbe({
    TFJS_BACKEND: "wasm",
    OPENBLAS_CORETYPE: "Haswell",
    OPENBLAS_NUM_THREADS: "1",
  });
  assert.equal(user.info.openblasCoretype, "Haswell");
  assert.equal(user.info.openblasCoretypeSource, "user");
  assert.equal(user.info.openblasCorename, "Haswell");
  assert.equal(user.info.threads, 1);
});

test("a missing addon: fallback under auto, an error under TUNEHOUSE_NATIVE_MATMUL=1", async () => {
  const missing = { TFJS_BACKEND: "wasm", TUNEHOUSE_NATIVE_ADDON: "/nonexistent/tunehouse_blas.node" };
  const r = await runProbe({ ...missing, TUNEHOUSE_NATIVE_MATMUL: undefined });
  assert.equal(r.info.nativeMatmul, false);
  assert.equal(r.info.linear, "explicit-transpose");
  assert.match(
    r.info.reason,
    /addon not built \(\/nonexistent\/tunehouse_blas.node missing; apt-get install libopenblas-dev/,
  );
  assert.deepEqual(r.grad, DW);
  const required = await runProbe({ ...missing, TUNEHOUSE_NATIVE_MATMUL: "1" });
  assert.match(
    required.error,
    /TUNEHOUSE_NATIVE_MATMUL=1 but the native matmul is unavailable: addon not built/,
  );
});
