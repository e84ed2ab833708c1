// The layer rule and "no import cycles" (.dependency-cruiser.cjs), checked through
// dependency-cruiser's API: its CLI (`npx depcruise`) refuses to start on Node 20, which the
// service supports, while the API it wraps runs there.
//
//   node scripts/check-deps.mjs             fail on any violation not in the known-violations file
//   node scripts/check-deps.mjs --no-ignore-known  fail on every violation, known or not
//   node scripts/check-deps.mjs --baseline  rewrite the known-violations file from today's tree
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cruise, format } from "dependency-cruiser";
import extractDepcruiseOptions from "dependency-cruiser/config-utl/extract-depcruise-options";
import extractTSConfig from "dependency-cruiser/config-utl/extract-ts-config";

const CONFIG = "./.dependency-cruiser.cjs";
const KNOWN = ".dependency-cruiser-known-violations.json";
const ROOTS = ["src", "worker", "scripts", "bench", "test"];

const mode = process.argv[2] ?? "--check";
if (!["--check", "--no-ignore-known", "--baseline"].includes(mode)) {
  console.error(`usage: node scripts/check-deps.mjs [--no-ignore-known | --baseline] (got ${mode})`);
  process.exit(2);
}

const options = await extractDepcruiseOptions(CONFIG);
if (mode === "--check" && existsSync(KNOWN)) {
  options.knownViolations = JSON.parse(readFileSync(KNOWN, "utf8"));
}
const tsConfig = extractTSConfig(options.tsConfig.fileName);
const cruised = await cruise(ROOTS, options, {}, { tsConfig });

if (mode === "--baseline") {
  const baseline = await format(cruised.output, { outputType: "baseline" });
  writeFileSync(KNOWN, baseline.output);
  console.log(`${KNOWN}: ${JSON.parse(baseline.output).length} known violations`);
} else {
  const report = await format(cruised.output, { outputType: "err" });
  process.stdout.write(report.output);
  process.exitCode = report.exitCode === 0 ? 0 : 1;
}
