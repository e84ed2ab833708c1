// Embedded mode without API_KEYS: one key is created on first start and kept in
// DATA_DIR/api-key (mode 0600), so every later start can print a key that works.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Database } from "../db/client.js";
import { createApiKey, DEFAULT_PROJECT, findActiveKey } from "./api-keys.js";

export function embeddedKeyPath(dataDir: string): string {
  return join(dataDir, "api-key");
}

function readKeyFile(path: string): string | null {
  try {
    const key = readFileSync(path, "utf8").trim();
    return key.length > 0 ? key : null;
  } catch {
    return null;
  }
}

/** Returns the stored key if it is still active, otherwise creates, stores and returns a new one. */
export async function ensureEmbeddedKey(
  db: Database,
  dataDir: string,
): Promise<{ key: string; created: boolean; path: string }> {
  const path = embeddedKeyPath(dataDir);
  const stored = readKeyFile(path);
  if (stored !== null && (await findActiveKey(db, stored)) !== null)
    return { key: stored, created: false, path };
  const { key } = await createApiKey(db, { projectName: DEFAULT_PROJECT, source: "embedded" });
  writeFileSync(path, `${key}\n`, { mode: 0o600 });
  return { key, created: true, path };
}
