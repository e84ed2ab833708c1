// Webhook endpoints in the database. Every query is scoped to the project: another project's
// endpoint is a missing endpoint (the same 404), and so are its delivery attempts.
// Endpoints from WEBHOOK_URLS (source `env`) live in project `default`, as API_KEYS keys do,
// and are reconciled at start: exactly the configured URLs, with the configured secrets.
import { and, desc, eq, lt, notInArray, or, type SQL, sql } from "drizzle-orm";
import { DEFAULT_PROJECT, ensureProject } from "../auth/api-keys.js";
import type { Database } from "../db/client.js";
import { webhookDeliveryAttempts, webhookEndpoints } from "../db/schema.js";
import { invalidRequest, notFound } from "../domain-error.js";
import { randomAlphanumeric } from "../ids.js";
import type { AttemptRow, EndpointRow } from "./webhook-objects.js";
import { newWebhookSecret } from "./webhook-signature.js";

export const newEndpointId = () => `we_${randomAlphanumeric(24)}`;

/** How long a rotated-out secret keeps signing deliveries beside the new one. */
export const PREVIOUS_SECRET_SECONDS = 24 * 3600;

export interface EndpointFields {
  url: string;
  events: string[] | null;
  description: string | null;
}

export async function createEndpoint(
  db: Database,
  projectId: string,
  fields: EndpointFields,
): Promise<EndpointRow> {
  const [row] = await db
    .insert(webhookEndpoints)
    .values({ id: newEndpointId(), projectId, ...fields, secret: newWebhookSecret(), source: "api" })
    .returning();
  return row;
}

const scoped = (projectId: string, id: string) =>
  and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.projectId, projectId));

export async function endpointOr404(db: Database, projectId: string, id: string): Promise<EndpointRow> {
  const [row] = await db.select().from(webhookEndpoints).where(scoped(projectId, id));
  if (!row) throw notFound("webhook endpoint", id, "webhook_endpoint_id");
  return row;
}

/** Newest first; up to limit + 1 rows. */
export async function listEndpoints(
  db: Database,
  projectId: string,
  q: { after?: string; limit: number },
): Promise<EndpointRow[]> {
  const t = webhookEndpoints;
  const conditions: SQL[] = [eq(t.projectId, projectId)];
  if (q.after !== undefined) {
    const [cursor] = await db.select().from(t).where(scoped(projectId, q.after));
    if (!cursor) throw invalidRequest(`No such webhook endpoint: ${q.after} (the 'after' cursor)`, "after");
    conditions.push(
      or(lt(t.createdAt, cursor.createdAt), and(eq(t.createdAt, cursor.createdAt), lt(t.id, cursor.id)))!,
    );
  }
  return db
    .select()
    .from(t)
    .where(and(...conditions))
    .orderBy(desc(t.createdAt), desc(t.id))
    .limit(q.limit + 1);
}

export async function updateEndpoint(
  db: Database,
  projectId: string,
  id: string,
  fields: Partial<EndpointFields>,
): Promise<EndpointRow> {
  if (Object.keys(fields).length === 0) return endpointOr404(db, projectId, id);
  const [row] = await db.update(webhookEndpoints).set(fields).where(scoped(projectId, id)).returning();
  if (!row) throw notFound("webhook endpoint", id, "webhook_endpoint_id");
  return row;
}

export async function rotateSecret(db: Database, projectId: string, id: string): Promise<EndpointRow> {
  const t = webhookEndpoints;
  const [row] = await db
    .update(t)
    .set({
      secret: newWebhookSecret(),
      previousSecret: sql`${t.secret}`,
      previousSecretExpiresAt: sql`now() + make_interval(secs => ${PREVIOUS_SECRET_SECONDS}::double precision)`,
    })
    .where(scoped(projectId, id))
    .returning();
  if (!row) throw notFound("webhook endpoint", id, "webhook_endpoint_id");
  return row;
}

/** Deliveries and attempts go with it (ON DELETE CASCADE). */
export async function deleteEndpoint(db: Database, projectId: string, id: string): Promise<void> {
  const [row] = await db
    .delete(webhookEndpoints)
    .where(scoped(projectId, id))
    .returning({ id: webhookEndpoints.id });
  if (!row) throw notFound("webhook endpoint", id, "webhook_endpoint_id");
}

/** Newest first; up to limit + 1 rows. The endpoint must be the project's (checked by the caller). */
export async function listAttempts(
  db: Database,
  endpointId: string,
  q: { after?: string; limit: number },
): Promise<AttemptRow[]> {
  const a = webhookDeliveryAttempts;
  const conditions: SQL[] = [eq(a.endpointId, endpointId)];
  if (q.after !== undefined) {
    const [cursor] = await db
      .select({ seq: a.seq })
      .from(a)
      .where(and(eq(a.endpointId, endpointId), eq(a.id, q.after)));
    if (!cursor) throw invalidRequest(`No such delivery attempt: ${q.after} (the 'after' cursor)`, "after");
    conditions.push(lt(a.seq, cursor.seq));
  }
  return db
    .select()
    .from(a)
    .where(and(...conditions))
    .orderBy(desc(a.seq))
    .limit(q.limit + 1);
}

/**
 * WEBHOOK_URLS at start: after it, project `default` has exactly one `env` endpoint per
 * configured URL (all events, the configured secret); `env` endpoints no longer configured are
 * deleted. Endpoints made through the API are left alone.
 */
export async function provisionEnvEndpoints(
  db: Database,
  targets: { url: string; secret: string }[],
): Promise<void> {
  if (targets.length === 0) {
    await db.delete(webhookEndpoints).where(eq(webhookEndpoints.source, "env"));
    return;
  }
  const project = await ensureProject(db, DEFAULT_PROJECT);
  const t = webhookEndpoints;
  const envOf = and(eq(t.projectId, project.id), eq(t.source, "env"));
  await db.transaction(async (tx) => {
    await tx.delete(t).where(
      and(
        envOf,
        notInArray(
          t.url,
          targets.map((x) => x.url),
        ),
      ),
    );
    for (const target of targets) {
      const [updated] = await tx
        .update(t)
        .set({ secret: target.secret, previousSecret: null, previousSecretExpiresAt: null, events: null })
        .where(and(envOf, eq(t.url, target.url)))
        .returning({ id: t.id });
      if (!updated) {
        await tx.insert(t).values({
          id: newEndpointId(),
          projectId: project.id,
          url: target.url,
          events: null,
          description: "from WEBHOOK_URLS",
          secret: target.secret,
          source: "env",
        });
      }
    }
  });
}
