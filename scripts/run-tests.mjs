// Runs every test/**/*.test.ts with Node's own test runner (through tsx), so the
// summary printed at the end is the runner's. Extra args are passed through
// (e.g. `npm test -- --test-name-pattern=files`); file args narrow the set.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === "fixtures" || name === "node_modules") continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
const files = args.filter((a) => a.endsWith(".ts"));
const flags = args.filter((a) => !a.endsWith(".ts"));
const tests = (files.length ? files : findTests("test")).sort();
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=1", ...flags, ...tests],
  { stdio: "inherit", env: process.env },
);
process.exit(result.status ?? 1);
