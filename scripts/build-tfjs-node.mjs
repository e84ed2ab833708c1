// Makes @tensorflow/tfjs-node (the `tensorflow` backend, the fastest CPU backend) usable on a
// machine where its own install cannot download libtensorflow: it builds the package's N-API
// binding offline against the TensorFlow C API inside the `tensorflow-cpu` Python wheel, which
// pip fetches from its configured index (the wheel is only unzipped; no Python environment).
//
//   node scripts/build-tfjs-node.mjs            from the root install hook: never fails an install
//   node scripts/build-tfjs-node.mjs --strict   (CI) exit 1 unless tfjs-node loads at the end
//   node scripts/build-tfjs-node.mjs --force    rebuild even when the binding already loads
//   node scripts/build-tfjs-node.mjs --gpu      the same for @tensorflow/tfjs-node-gpu with the
//                                               CUDA 12 `tensorflow` wheel (see README)
//
// Order: tfjs-node already loads (its normal install, with internet) → nothing to do; else the
// package is installed without its scripts if npm dropped it, the wheel's C API is laid out as the
// package's deps/ and node-gyp builds lib/napi-v8. The unzipped, stripped libraries are cached in
// TUNEHOUSE_TF_CACHE (default ~/.cache/tunehouse) so a second `npm ci` rebuilds in seconds.
// TUNEHOUSE_TFJS_NODE=0 skips all of it. TF_WHEEL_VERSION picks the wheel (default 2.21.0).
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { findNodeGyp, nodedirArgs } from "./node-gyp-command.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const strict = args.includes("--strict");
const force = args.includes("--force");
const gpu = args.includes("--gpu");
const pkgName = gpu ? "@tensorflow/tfjs-node-gpu" : "@tensorflow/tfjs-node";
const wheelName = gpu ? "tensorflow" : "tensorflow-cpu";
const tfVersion = process.env.TF_WHEEL_VERSION || "2.21.0";
const pkgDir = join(root, "node_modules", pkgName);
const cacheDir = join(
  process.env.TUNEHOUSE_TF_CACHE || join(homedir(), ".cache", "tunehouse"),
  `${wheelName}-${tfVersion}-c-api`,
);
const started = Date.now();

function say(ok, why) {
  const prefix = `[tunehouse] ${pkgName} (backend "tensorflow"):`;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    ok
      ? `${prefix} ready (${why}; ${secs} s)`
      : `${prefix} not available, training falls back to wasm: ${why}`,
  );
  process.exitCode = !ok && strict ? 1 : 0;
}

function run(cmd, argv, opts = {}) {
  return spawnSync(cmd, argv, { encoding: "utf8", timeout: 600_000, maxBuffer: 64 * 2 ** 20, ...opts });
}

function firstLine(r) {
  if (r.error) return r.error.message;
  const text = `${r.stderr ?? ""}\n${r.stdout ?? ""}`.trim().split("\n").filter(Boolean);
  return (text.find((l) => /error/i.test(l)) ?? text.at(-1) ?? `exit ${r.status}`).slice(0, 200);
}

/** Loads the package in a child process and runs a matMul on the tensorflow backend. */
function selfCheck() {
  const code = `
    const tf = require(${JSON.stringify(pkgDir)});
    const a = tf.ones([64, 64]);
    const s = tf.matMul(a, a).sum().dataSync()[0];
    if (s !== 64 * 64 * 64 || tf.getBackend() !== "tensorflow") { console.error("self-check failed: " + s); process.exit(1); }
    console.log("TF " + tf.version["tfjs-node"] + " / C API " + (tf.backend().binding.TF_Version || "?"));`;
  const r = run(process.execPath, ["-e", code], { env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3" } });
  return r.status === 0 ? { ok: true, line: r.stdout.trim() } : { ok: false, line: firstLine(r) };
}

function requiredVersion() {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  return pkg.optionalDependencies?.[pkgName] ?? pkg.dependencies?.[pkgName] ?? null;
}

/** npm drops an optional dependency whose install script failed; put it back without scripts. */
function ensurePackage() {
  if (existsSync(join(pkgDir, "package.json"))) return null;
  const version = requiredVersion();
  if (!version) return `${pkgName} is not a dependency of this project`;
  const npmCli = process.env.npm_execpath;
  const [cmd, pre] = npmCli?.endsWith(".js") ? [process.execPath, [npmCli]] : ["npm", []];
  const r = run(
    cmd,
    [...pre, "install", "--no-save", "--ignore-scripts", "--no-audit", "--no-fund", `${pkgName}@${version}`],
    { cwd: root, env: { ...process.env, npm_config_ignore_scripts: "true" } },
  );
  if (r.status !== 0 || !existsSync(join(pkgDir, "package.json")))
    return `npm could not install ${pkgName}: ${firstLine(r)}`;
  return null;
}

function missingTool() {
  for (const tool of ["pip", "unzip", "strip", "make", "g++", "python3"]) {
    const r = run("sh", ["-c", `command -v ${tool}`]);
    if (r.status !== 0)
      return `missing tool: ${tool} (apt-get install -y build-essential python3 python3-pip unzip)`;
  }
  return null;
}

/** The wheel's C API (two shared libraries, stripped, and the headers), unpacked once into the cache. */
function ensureCApi() {
  const marker = join(cacheDir, ".complete");
  if (existsSync(marker)) return { dir: cacheDir, cached: true };
  const work = mkdtempSync(join(tmpdir(), "tunehouse-tf-wheel-"));
  try {
    const dl = run("pip", [
      "download",
      "--quiet",
      "--no-deps",
      "--only-binary=:all:",
      "--python-version",
      "3.11",
      "--platform",
      "manylinux_2_27_x86_64",
      "--implementation",
      "cp",
      `${wheelName}==${tfVersion}`,
      "-d",
      join(work, "wheel"),
    ]);
    if (dl.status !== 0)
      throw new Error(`pip could not download ${wheelName}==${tfVersion}: ${firstLine(dl)}`);
    const unz = run("sh", [
      "-c",
      `unzip -q -o "${work}"/wheel/*.whl 'tensorflow/libtensorflow_cc.so.2' 'tensorflow/libtensorflow_framework.so.2' \
        'tensorflow/include/tensorflow/c/*' 'tensorflow/include/tensorflow/core/platform/ctstring*' \
        'tensorflow/include/tsl/platform/ctstring*' 'tensorflow/include/xla/tsl/c/*' -d "${work}/x"`,
    ]);
    if (unz.status !== 0) throw new Error(`unzip failed: ${firstLine(unz)}`);
    rmSync(join(work, "wheel"), { recursive: true, force: true });
    const staging = `${cacheDir}.partial`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(join(staging, "lib"), { recursive: true });
    cpSync(join(work, "x", "tensorflow", "include"), join(staging, "include"), { recursive: true });
    // libtensorflow_cc holds the eager C API (TFE_*), libtensorflow_framework the rest
    for (const lib of ["libtensorflow_cc.so.2", "libtensorflow_framework.so.2"]) {
      const s = run("strip", [
        "--strip-unneeded",
        "-o",
        join(staging, "lib", lib),
        join(work, "x", "tensorflow", lib),
      ]);
      if (s.status !== 0) throw new Error(`strip ${lib} failed: ${firstLine(s)}`);
    }
    writeFileSync(join(staging, ".complete"), `${wheelName}==${tfVersion}\n`);
    rmSync(cacheDir, { recursive: true, force: true });
    mkdirSync(dirname(cacheDir), { recursive: true });
    renameSync(staging, cacheDir);
    return { dir: cacheDir, cached: false };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Hard links when the cache shares the file system (instant, no extra disk), else copies. */
function place(from, to) {
  try {
    linkSync(from, to);
  } catch {
    cpSync(from, to);
  }
}

function layOutDeps(capi) {
  for (const d of ["deps", "build", "lib"]) rmSync(join(pkgDir, d), { recursive: true, force: true });
  const lib = join(pkgDir, "deps", "lib");
  mkdirSync(lib, { recursive: true });
  cpSync(join(capi, "include"), join(pkgDir, "deps", "include"), { recursive: true });
  place(join(capi, "lib", "libtensorflow_cc.so.2"), join(lib, "libtensorflow_cc.so.2"));
  place(join(capi, "lib", "libtensorflow_framework.so.2"), join(lib, "libtensorflow_framework.so.2"));
  // the binding links -ltensorflow -ltensorflow_framework
  symlinkSync("libtensorflow_cc.so.2", join(lib, "libtensorflow.so"));
  symlinkSync("libtensorflow_cc.so.2", join(lib, "libtensorflow.so.2"));
  symlinkSync("libtensorflow_framework.so.2", join(lib, "libtensorflow_framework.so"));
}

function build() {
  const gyp = findNodeGyp(root);
  if (!gyp) throw new Error("node-gyp not found");
  // the package's loader looks in lib/napi-v8 on Node ≥ 18 (the highest N-API version it lists)
  const r = run(
    process.execPath,
    [
      gyp,
      "rebuild",
      ...nodedirArgs(),
      "--napi_build_version=8",
      "--module_name=tfjs_binding",
      "--module_path=../lib/napi-v8",
      "-j",
      "2",
    ],
    { cwd: pkgDir },
  );
  if (r.status !== 0) throw new Error(`node-gyp failed: ${firstLine(r)}`);
}

/** The built binding, cached per package version and Node ABI beside the C API it links. */
function bindingCachePath() {
  const version = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
  return join(cacheDir, `tfjs_binding-${version}-node-abi${process.versions.modules}.node`);
}

function restoreBinding() {
  const cached = bindingCachePath();
  if (!existsSync(cached)) return false;
  mkdirSync(join(pkgDir, "lib", "napi-v8"), { recursive: true });
  cpSync(cached, join(pkgDir, "lib", "napi-v8", "tfjs_binding.node"));
  return true;
}

function main() {
  if (process.env.TUNEHOUSE_TFJS_NODE === "0") return say(false, "disabled by TUNEHOUSE_TFJS_NODE=0");
  if (process.platform !== "linux" || process.arch !== "x64") {
    return say(
      false,
      `the TensorFlow wheel route needs linux x64, this is ${process.platform} ${process.arch}`,
    );
  }
  const missingPkg = ensurePackage();
  if (missingPkg) return say(false, missingPkg);
  if (!force) {
    const before = selfCheck();
    if (before.ok) return say(true, `already loads: ${before.line}`);
  }
  if (!/\bavx\b/.test(readFileSync("/proc/cpuinfo", "utf8")))
    return say(false, "the TensorFlow wheel needs a CPU with AVX");
  const tool = missingTool();
  if (tool) return say(false, tool);
  const capi = ensureCApi();
  layOutDeps(capi.dir);
  if (!force && restoreBinding()) {
    const restored = selfCheck();
    if (restored.ok)
      return say(true, `the ${wheelName} ${tfVersion} C API and binding from the cache: ${restored.line}`);
    rmSync(join(pkgDir, "lib"), { recursive: true, force: true });
  }
  build();
  const after = selfCheck();
  if (!after.ok) return say(false, `built, but it does not load: ${after.line}`);
  cpSync(join(pkgDir, "lib", "napi-v8", "tfjs_binding.node"), bindingCachePath());
  say(
    true,
    `built against the ${wheelName} ${tfVersion} wheel's C API${capi.cached ? " (cached)" : ""}: ${after.line}`,
  );
}

try {
  main();
} catch (e) {
  say(false, e instanceof Error ? e.message.split("\n")[0] : String(e));
}
