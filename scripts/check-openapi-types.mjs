// CI guard: src/contract/openapi-types.ts must be what `npm run gen:types` makes from
// openapi/openapi.yaml today. Regenerates into a temp file and compares.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const committed = "src/contract/openapi-types.ts";
const dir = mkdtempSync(join(tmpdir(), "openapi-types-"));
const fresh = join(dir, "openapi-types.ts");
try {
  const run = spawnSync("npx", ["--no-install", "openapi-typescript", "openapi/openapi.yaml", "-o", fresh], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (run.status !== 0) {
    console.error("check:types-fresh: openapi-typescript failed");
    process.exit(1);
  }
  let current = "";
  try {
    current = readFileSync(committed, "utf8");
  } catch {
    console.error(`check:types-fresh: ${committed} is missing; run \`npm run gen:types\``);
    process.exit(1);
  }
  if (readFileSync(fresh, "utf8") !== current) {
    console.error(`check:types-fresh: ${committed} is stale; run \`npm run gen:types\` and commit it`);
    process.exit(1);
  }
  console.log(`check:types-fresh: ${committed} matches openapi/openapi.yaml`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
