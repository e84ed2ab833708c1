// The layer rule and "no import cycles" (.dependency-cruiser.cjs), checked through
// dependency-cruiser's API: its CLI (`npx depcruise`) refuses to start on Node 20, which the
// service supports, while the API it wraps runs there. Any violation fails.
//
//   node scripts/check-deps.mjs
import { cruise, format } from "dependency-cruiser";
import extractDepcruiseOptions from "dependency-cruiser/config-utl/extract-depcruise-options";
import extractTSConfig from "dependency-cruiser/config-utl/extract-ts-config";

const CONFIG = "./.dependency-cruiser.cjs";
const ROOTS = ["src", "worker", "scripts", "bench", "test"];

const options = await extractDepcruiseOptions(CONFIG);
const tsConfig = extractTSConfig(options.tsConfig.fileName);
const cruised = await cruise(ROOTS, options, {}, { tsConfig });
const report = await format(cruised.output, { outputType: "err" });
process.stdout.write(report.output);
process.exitCode = report.exitCode === 0 ? 0 : 1;
