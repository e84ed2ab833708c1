// Builds the optional OpenBLAS matmul addon (native/) with node-gyp. Runs from npm's
// install hooks and `npm run build:native`. It must never fail an install: whatever
// happens it prints one line saying whether the fast path was built, and exits 0.
// `--strict` (for CI) exits 1 when the addon was not built.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { findNodeGyp, nodedirArgs } from "./node-gyp-command.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const addonPath = join(nativeDir, "build", "Release", "tunehouse_blas.node");
const strict = process.argv.includes("--strict");
const BUILD_TIMEOUT_MS = 300_000;

function say(built, why) {
  const prefix = "[tunehouse] native matmul (OpenBLAS):";
  console.log(
    built
      ? `${prefix} fast path built (${why})`
      : `${prefix} not built, using the pure-tfjs fallback: ${why}`,
  );
  process.exitCode = !built && strict ? 1 : 0;
}

// Compiles and links a one-line CBLAS program: the cheapest proof that a C compiler,
// <cblas.h> and -lopenblas are all present, with a clear reason when one is not.
function probeToolchain() {
  const cc = process.env.CC || "cc";
  const dir = mkdtempSync(join(tmpdir(), "tunehouse-blas-probe-"));
  try {
    const src = join(dir, "probe.c");
    writeFileSync(src, "#include <cblas.h>\nint main(void) { return cblas_sgemm == 0; }\n");
    const r = spawnSync(cc, [src, "-o", join(dir, "probe"), "-lopenblas"], {
      encoding: "utf8",
      timeout: 60_000,
    });
    if (r.error) return `no C compiler (${cc}: ${r.error.code ?? r.error.message})`;
    if (r.status === 0) return null;
    const err = `${r.stderr}`;
    if (/cblas\.h/.test(err)) return "<cblas.h> not found (apt-get install libopenblas-dev)";
    if (/-lopenblas|openblas/.test(err)) return "libopenblas not found (apt-get install libopenblas-dev)";
    return `probe compile failed: ${err.trim().split("\n")[0]}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function main() {
  if (process.env.TUNEHOUSE_NATIVE_MATMUL === "0") return say(false, "disabled by TUNEHOUSE_NATIVE_MATMUL=0");
  if (process.platform !== "linux" && process.platform !== "darwin") {
    return say(false, `unsupported platform ${process.platform}`);
  }
  const missing = probeToolchain();
  if (missing) return say(false, missing);
  const gyp = findNodeGyp(root);
  if (!gyp) return say(false, "node-gyp not found");
  const r = spawnSync(process.execPath, [gyp, "rebuild", ...nodedirArgs()], {
    cwd: nativeDir,
    encoding: "utf8",
    timeout: BUILD_TIMEOUT_MS,
  });
  if (r.error) return say(false, `node-gyp did not run: ${r.error.message}`);
  if (r.status !== 0 || !existsSync(addonPath)) {
    const lines = `${r.stderr}\n${r.stdout}`.split("\n").filter((l) => /error/i.test(l));
    return say(false, `node-gyp failed: ${lines.slice(0, 2).join(" | ") || `exit ${r.status}`}`);
  }
  say(true, addonPath);
}

try {
  main();
} catch (e) {
  say(false, `unexpected: ${e instanceof Error ? e.message : String(e)}`);
}
