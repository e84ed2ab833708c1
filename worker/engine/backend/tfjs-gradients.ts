import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";

/**
 * tfjs-core alone has no gradients: they are registered by
 * `@tensorflow/tfjs-core/dist/register_all_gradients.js`, an ES module tree with
 * extensionless imports that Node cannot load (the `@tensorflow/tfjs` union package
 * bundles it; we do not depend on that). Without it, tf.grads fails with "gradient
 * function not found for Sum".
 *
 * So we bundle that one file with esbuild into CommonJS once, cache it under
 * node_modules/.cache, and require it. The bundle carries its own copy of the ops the
 * gradients use; tfjs keeps its engine and registries on the global object (and checks
 * tensors by shape, not class), so that copy works on our engine, as in the union package.
 */

const require = createRequire(import.meta.url);

function bundleGradients(entry: string): string {
  const { buildSync } = require("esbuild") as typeof import("esbuild");
  const result = buildSync({
    entryPoints: [entry],
    bundle: true,
    format: "cjs",
    platform: "node",
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0].text;
}

function loadBundle(code: string, cacheFile: string | undefined): void {
  if (cacheFile) {
    try {
      mkdirSync(dirname(cacheFile), { recursive: true });
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      writeFileSync(tmp, code);
      renameSync(tmp, cacheFile);
      require(cacheFile);
      return;
    } catch {
      // read-only node_modules: evaluate from memory instead
    }
  }
  const mod = { exports: {} };
  new Function("module", "exports", "require", code)(mod, mod.exports, require);
}

let registered = false;

/** Registers every tfjs-core gradient once per process (no-op when already there, e.g. via tfjs-node). */
export function ensureGradientsRegistered(): void {
  if (registered || tf.getGradient("Sum")) {
    registered = true;
    return;
  }
  const entry = require.resolve("@tensorflow/tfjs-core/dist/register_all_gradients.js");
  const corePkg = require.resolve("@tensorflow/tfjs-core/package.json");
  const version = (JSON.parse(readFileSync(corePkg, "utf8")) as { version: string }).version;
  const nodeModules = corePkg.slice(
    0,
    corePkg.lastIndexOf(`${join("node_modules", "@tensorflow")}`) + "node_modules".length,
  );
  const cacheFile = join(nodeModules, ".cache", "tunehouse", `tfjs-core-${version}-gradients.cjs`);
  if (existsSync(cacheFile)) {
    try {
      require(cacheFile);
    } catch {
      loadBundle(bundleGradients(entry), undefined);
    }
  } else {
    loadBundle(bundleGradients(entry), cacheFile);
  }
  if (!tf.getGradient("Sum"))
    throw new Error(`registering tfjs-core ${version} gradients from ${entry} failed`);
  registered = true;
}
