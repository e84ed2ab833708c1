// CI guard: migrations/ must already hold everything src/store/db/schema.ts declares, i.e.
// `npm run db:generate` would write no new migration. Runs drizzle-kit generate (which compares the
// schema with the last snapshot in migrations/meta, no database needed) into a temp copy of
// migrations/ and fails when that copy gains a file.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "migrations-fresh-"));
const out = join(dir, "migrations");
const config = join(dir, "drizzle.config.ts");

/** Every file under `root`, relative to it. */
function listFiles(root) {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath ?? entry.path, entry.name).slice(root.length + 1))
    .sort();
}

try {
  cpSync("migrations", out, { recursive: true });
  // The project's own config (dialect, schema path), writing into the copy. drizzle-kit puts
  // "./" before `out`, so it must be relative to this folder.
  writeFileSync(
    config,
    `import base from ${JSON.stringify(resolve("drizzle.config.ts"))};\n` +
      `export default { ...base, out: ${JSON.stringify(relative(".", out))} };\n`,
  );
  const before = listFiles(out);
  // No stdin: a schema change drizzle-kit would ask about (a rename) fails here instead of waiting.
  const run = spawnSync("npx", ["--no-install", "drizzle-kit", "generate", "--config", config], {
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
    timeout: 120_000,
  });
  const added = listFiles(out).filter((file) => !before.includes(file));
  // drizzle-kit exits 0 on some errors (a missing schema or snapshot), so only its own
  // "nothing to migrate" counts as a pass.
  const unchanged = run.status === 0 && /No schema changes/.test(run.stdout);
  if (!unchanged || added.length > 0) {
    process.stderr.write(run.stdout + run.stderr);
    console.error(
      added.length > 0
        ? `check:migrations-fresh: drizzle-kit generate would add ${added.join(", ")}: ` +
            "src/store/db/schema.ts has changes migrations/ lacks; run `npm run db:generate` and commit them"
        : "check:migrations-fresh: drizzle-kit generate did not confirm that nothing is to migrate (output above)",
    );
    process.exit(1);
  }
  console.log("check:migrations-fresh: migrations/ matches src/store/db/schema.ts");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
