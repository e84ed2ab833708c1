// Projects and API keys. A key is shown once, when created; the database keeps only its
// sha256 (a key is 238 random bits, so a fast hash is enough) and a short hint.
import { createHash } from "node:crypto";
import { and, asc, eq, inArray, isNull, notInArray, or } from "drizzle-orm";
import type { Database } from "../db/client.js";
import { apiKeys, projects } from "../db/schema.js";
import { newId, randomAlphanumeric } from "../ids.js";

export const DEFAULT_PROJECT = "default";
export type KeySource = "cli" | "env" | "embedded";

export function generateApiKey(): string {
  return `sk-th-${randomAlphanumeric(40)}`;
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

function keyHint(key: string): string {
  return key.length <= 12 ? `${key.slice(0, 2)}…` : `${key.slice(0, 8)}…${key.slice(-4)}`;
}

export async function ensureProject(db: Database, name: string): Promise<{ id: string; name: string }> {
  await db
    .insert(projects)
    .values({ id: newId("proj_"), name })
    .onConflictDoNothing({ target: projects.name });
  const [row] = await db
    .select({ id: projects.id, name: projects.name })
    .from(projects)
    .where(eq(projects.name, name));
  return row;
}

export interface CreatedKey {
  id: string;
  key: string;
  projectId: string;
  projectName: string;
}

/** Creates a key in the project (created if needed); `key` provisions a given key instead of a random one. */
export async function createApiKey(
  db: Database,
  opts: { projectName: string; source: KeySource; key?: string },
): Promise<CreatedKey> {
  const project = await ensureProject(db, opts.projectName);
  const key = opts.key ?? generateApiKey();
  const id = newId("key_");
  await db.insert(apiKeys).values({
    id,
    projectId: project.id,
    keyHash: hashApiKey(key),
    keyHint: keyHint(key),
    source: opts.source,
  });
  return { id, key, projectId: project.id, projectName: project.name };
}

/** Revokes by key id (key_…) or by the key itself; returns how many keys were revoked. */
export async function revokeApiKey(db: Database, keyOrId: string): Promise<number> {
  const revoked = await db
    .update(apiKeys)
    .set({ revokedAt: new Date() })
    .where(
      and(isNull(apiKeys.revokedAt), or(eq(apiKeys.id, keyOrId), eq(apiKeys.keyHash, hashApiKey(keyOrId)))),
    )
    .returning({ id: apiKeys.id });
  return revoked.length;
}

export interface KeyListing {
  id: string;
  project: string;
  hint: string;
  source: string;
  createdAt: Date;
  revokedAt: Date | null;
}

export async function listApiKeys(db: Database): Promise<KeyListing[]> {
  return db
    .select({
      id: apiKeys.id,
      project: projects.name,
      hint: apiKeys.keyHint,
      source: apiKeys.source,
      createdAt: apiKeys.createdAt,
      revokedAt: apiKeys.revokedAt,
    })
    .from(apiKeys)
    .innerJoin(projects, eq(projects.id, apiKeys.projectId))
    .orderBy(asc(apiKeys.createdAt), asc(apiKeys.id));
}

export interface KeyOwner {
  keyId: string;
  projectId: string;
}

export async function findActiveKey(db: Database, key: string): Promise<KeyOwner | null> {
  const [row] = await db
    .select({ keyId: apiKeys.id, projectId: apiKeys.projectId })
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, hashApiKey(key)), isNull(apiKeys.revokedAt)));
  return row ?? null;
}

/**
 * API_KEYS: afterwards exactly these keys (plus keys made with the `keys` command) are
 * active. Keys from an earlier API_KEYS or from the embedded first start are revoked;
 * a listed key that was revoked before is made active again.
 */
export async function provisionEnvKeys(db: Database, keys: string[]): Promise<void> {
  const project = await ensureProject(db, DEFAULT_PROJECT);
  const hashes = [...new Set(keys.map(hashApiKey))];
  await db.transaction(async (tx) => {
    await tx
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(
        and(
          inArray(apiKeys.source, ["env", "embedded"]),
          isNull(apiKeys.revokedAt),
          notInArray(apiKeys.keyHash, hashes),
        ),
      );
    for (const key of new Set(keys)) {
      const hash = hashApiKey(key);
      const [existing] = await tx.select({ id: apiKeys.id }).from(apiKeys).where(eq(apiKeys.keyHash, hash));
      if (existing) {
        await tx.update(apiKeys).set({ revokedAt: null }).where(eq(apiKeys.id, existing.id));
      } else {
        await tx.insert(apiKeys).values({
          id: newId("key_"),
          projectId: project.id,
          keyHash: hash,
          keyHint: keyHint(key),
          source: "env",
        });
      }
    }
  });
}
