// `npm run keys -- create --project NAME | revoke KEY_OR_ID | list`: manage API keys in the
// database the server uses (DATABASE_URL, or the embedded one in DATA_DIR).
import { join } from "node:path";
import { loadConfig } from "./config.js";
import { createApiKey, DEFAULT_PROJECT, listApiKeys, revokeApiKey } from "./store/auth/api-keys.js";
import { openDatabase } from "./store/db/client.js";

const USAGE = `Usage:
  npm run keys -- create [--project NAME]   create a key (project '${DEFAULT_PROJECT}' by default; created if new)
  npm run keys -- revoke KEY_OR_ID          revoke a key, given the key itself or its id (key_…)
  npm run keys -- list                      list keys (id, project, hint, source, created, revoked)
Uses DATABASE_URL, or the embedded database in DATA_DIR (stop \`npm start\` first: PGlite is single-process).`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help") {
    console.log(USAGE);
    return command === undefined ? 1 : 0;
  }
  const config = loadConfig();
  const database = await openDatabase(
    config.databaseUrl === null
      ? { kind: "pglite", dataDir: join(config.dataDir, "pglite") }
      : { kind: "postgres", url: config.databaseUrl },
  );
  try {
    if (command === "create") {
      const i = rest.indexOf("--project");
      const project = i >= 0 ? rest[i + 1] : DEFAULT_PROJECT;
      if (!project || project.startsWith("--")) {
        console.error("create: --project needs a name");
        return 1;
      }
      const created = await createApiKey(database.db, { projectName: project, source: "cli" });
      console.log(`Created ${created.id} in project '${created.projectName}'. The key (shown only now):`);
      console.log(created.key);
      return 0;
    }
    if (command === "revoke") {
      if (!rest[0]) {
        console.error("revoke: give the key or its id");
        return 1;
      }
      const n = await revokeApiKey(database.db, rest[0]);
      console.log(n > 0 ? `Revoked ${n} key.` : "No active key matches.");
      return n > 0 ? 0 : 1;
    }
    if (command === "list") {
      for (const k of await listApiKeys(database.db)) {
        const state = k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : "active";
        console.log(`${k.id}\t${k.project}\t${k.hint}\t${k.source}\t${k.createdAt.toISOString()}\t${state}`);
      }
      return 0;
    }
    console.error(`Unknown command '${command}'.\n${USAGE}`);
    return 1;
  } finally {
    await database.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
