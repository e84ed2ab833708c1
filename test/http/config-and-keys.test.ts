// Configuration from the environment, and API key provisioning (API_KEYS, embedded key file).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError, DEFAULT_CONFIG, loadConfig } from "../../src/config.js";
import {
  createApiKey,
  findActiveKey,
  listApiKeys,
  provisionEnvKeys,
  revokeApiKey,
} from "../../src/store/auth/api-keys.js";
import { ensureEmbeddedKey } from "../../src/store/auth/embedded-key.js";
import { type TestDatabase, testDatabases } from "../support/databases.js";

describe("loadConfig", () => {
  it("gives the documented defaults for an empty environment", () => {
    const config = loadConfig({});
    assert.equal(config.port, 8000);
    assert.equal(config.host, "127.0.0.1");
    assert.equal(config.databaseUrl, null);
    assert.equal(config.apiKeys, null);
    assert.equal(config.maxFileBytes, 512 * 1024 * 1024);
    assert.equal(config.maxLineBytes, DEFAULT_CONFIG.maxLineBytes);
    assert.ok(config.dataDir.endsWith("/data"));
    assert.ok(config.modelsDir.endsWith("/models"));
  });
  it("reads every variable and names the one that is wrong", () => {
    const config = loadConfig({
      PORT: "9001",
      HOST: "0.0.0.0",
      DATABASE_URL: "postgres://u@h/db",
      API_KEYS: "key-one-123, key-two-456",
      MAX_FILE_BYTES: "1000",
      MAX_LINE_BYTES: "100",
    });
    assert.equal(config.port, 9001);
    assert.deepEqual(config.apiKeys, ["key-one-123", "key-two-456"]);
    assert.equal(config.databaseUrl, "postgres://u@h/db");
    assert.equal(config.maxFileBytes, 1000);
    assert.throws(
      () => loadConfig({ PORT: "eighty" }),
      (e: unknown) => e instanceof ConfigError && /PORT/.test(e.message),
    );
    assert.throws(() => loadConfig({ MAX_FILE_BYTES: "-1" }), /MAX_FILE_BYTES/);
    assert.throws(() => loadConfig({ DATABASE_URL: "mysql://x" }), /DATABASE_URL/);
    assert.throws(() => loadConfig({ API_KEYS: "short" }), /API_KEYS/);
  });
});

for (const target of testDatabases()) {
  describe(`API keys [${target.name}]`, () => {
    let db: TestDatabase;
    let dir: string;
    before(async () => {
      db = await target.open();
      dir = mkdtempSync(join(tmpdir(), "keys-"));
    });
    after(async () => {
      await db.dispose();
      rmSync(dir, { recursive: true, force: true });
    });

    it("stores only a hash, and revokes by key or by id", async () => {
      const created = await createApiKey(db.handle.db, { projectName: "alpha", source: "cli" });
      assert.match(created.key, /^sk-th-[A-Za-z0-9]{40}$/);
      const listed = (await listApiKeys(db.handle.db)).find((k) => k.id === created.id);
      assert.equal(listed?.project, "alpha");
      assert.ok(!JSON.stringify(listed).includes(created.key));
      assert.equal((await findActiveKey(db.handle.db, created.key))?.projectId, created.projectId);
      assert.equal(await revokeApiKey(db.handle.db, created.id), 1);
      assert.equal(await findActiveKey(db.handle.db, created.key), null);
      const second = await createApiKey(db.handle.db, { projectName: "alpha", source: "cli" });
      assert.equal(second.projectId, created.projectId);
      assert.equal(await revokeApiKey(db.handle.db, second.key), 1);
      assert.equal(await revokeApiKey(db.handle.db, second.key), 0);
    });

    it("embedded mode keeps one key in DATA_DIR/api-key (0600) across starts", async () => {
      const first = await ensureEmbeddedKey(db.handle.db, dir);
      assert.equal(first.created, true);
      assert.equal(readFileSync(join(dir, "api-key"), "utf8").trim(), first.key);
      assert.equal(statSync(join(dir, "api-key")).mode & 0o777, 0o600);
      const again = await ensureEmbeddedKey(db.handle.db, dir);
      assert.deepEqual([again.created, again.key], [false, first.key]);
      await revokeApiKey(db.handle.db, first.key);
      const replaced = await ensureEmbeddedKey(db.handle.db, dir);
      assert.equal(replaced.created, true);
      assert.notEqual(replaced.key, first.key);
    });

    it("API_KEYS provisions exactly those keys in the default project", async () => {
      const cli = await createApiKey(db.handle.db, { projectName: "ops", source: "cli" });
      await provisionEnvKeys(db.handle.db, ["env-key-aaaaaaaa", "env-key-bbbbbbbb"]);
      const a = await findActiveKey(db.handle.db, "env-key-aaaaaaaa");
      assert.ok(a);
      assert.ok(await findActiveKey(db.handle.db, "env-key-bbbbbbbb"));
      await provisionEnvKeys(db.handle.db, ["env-key-bbbbbbbb", "env-key-cccccccc"]);
      assert.equal(await findActiveKey(db.handle.db, "env-key-aaaaaaaa"), null);
      assert.equal((await findActiveKey(db.handle.db, "env-key-cccccccc"))?.projectId, a.projectId);
      // the embedded key from the test above is superseded; keys made with the CLI stay
      const embedded = readFileSync(join(dir, "api-key"), "utf8").trim();
      assert.equal(await findActiveKey(db.handle.db, embedded), null);
      assert.ok(await findActiveKey(db.handle.db, cli.key));
      // a key listed again after being dropped comes back
      await provisionEnvKeys(db.handle.db, ["env-key-aaaaaaaa"]);
      assert.ok(await findActiveKey(db.handle.db, "env-key-aaaaaaaa"));
    });
  });
}
