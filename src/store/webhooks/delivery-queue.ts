// Pending deliveries in the database: the claim (FOR UPDATE SKIP LOCKED + a lease, so any
// number of api and worker processes share the queue and a dispatcher that dies only delays
// its deliveries until the lease ends) and the record of one attempt with the delivery's next
// state, in one transaction. Times are the database's (now()), the same for every process.
import { and, eq, sql } from "drizzle-orm";
import type { Queryable } from "../blobs/blob-store.js";
import type { Database } from "../db/client.js";
import { webhookDeliveries, webhookDeliveryAttempts, webhookEndpoints, webhookEvents } from "../db/schema.js";
import { randomAlphanumeric } from "../ids.js";

/** One POST to an endpoint, as the dispatcher saw it. */
export interface AttemptResult {
  /** null when no HTTP answer came */
  statusCode: number | null;
  /** set when the attempt failed: a short reason (timeout, connection refused, HTTP 500…) */
  error: string | null;
  durationMs: number;
  responseExcerpt: string | null;
  ok: boolean;
}

export interface ClaimedDelivery {
  id: string;
  projectId: string;
  endpointId: string;
  url: string;
  /** the current secret first, then a rotated-out one still in its grace period */
  secrets: string[];
  eventId: string;
  eventType: string;
  payload: string;
  /** attempts made before this one */
  attempts: number;
}

const rowsOf = <T>(result: unknown): T[] => (result as { rows: T[] }).rows ?? [];

export async function claimDueDeliveries(
  q: Queryable,
  dispatcherId: string,
  leaseSeconds: number,
  limit: number,
): Promise<ClaimedDelivery[]> {
  const d = webhookDeliveries;
  const claimed = rowsOf<{ id: string }>(
    await q.execute(sql`
      WITH due AS (
        SELECT id FROM ${d}
        WHERE status = 'pending' AND next_attempt_at <= now() AND (lease_expires_at IS NULL OR lease_expires_at < now())
        ORDER BY next_attempt_at
        FOR UPDATE SKIP LOCKED
        LIMIT ${limit}
      )
      UPDATE ${d} SET claimed_by = ${dispatcherId},
        lease_expires_at = now() + make_interval(secs => ${leaseSeconds}::double precision)
      FROM due WHERE ${d.id} = due.id
      RETURNING ${d.id} AS id`),
  );
  if (claimed.length === 0) return [];
  const out: ClaimedDelivery[] = [];
  for (const { id } of claimed) {
    const [row] = await q
      .select({
        id: d.id,
        projectId: d.projectId,
        endpointId: d.endpointId,
        url: webhookEndpoints.url,
        secret: webhookEndpoints.secret,
        previousSecret: sql<
          string | null
        >`CASE WHEN ${webhookEndpoints.previousSecretExpiresAt} > now() THEN ${webhookEndpoints.previousSecret} END`,
        eventId: webhookEvents.id,
        eventType: webhookEvents.type,
        payload: webhookEvents.payload,
        attempts: d.attempts,
      })
      .from(d)
      .innerJoin(webhookEndpoints, eq(webhookEndpoints.id, d.endpointId))
      .innerJoin(webhookEvents, eq(webhookEvents.id, d.eventId))
      .where(eq(d.id, id));
    if (row) {
      const { secret, previousSecret, ...rest } = row;
      out.push({ ...rest, secrets: previousSecret ? [secret, previousSecret] : [secret] });
    }
  }
  return out;
}

/**
 * Records the attempt and moves the delivery on: `delivered` on a 2xx; else `pending` again
 * after `retryDelayMs`, or `failed` once that would be later than `maxAgeMs` after the event.
 */
export async function recordAttempt(
  db: Database,
  delivery: ClaimedDelivery,
  dispatcherId: string,
  result: AttemptResult,
  retry: { delayMs: number; maxAgeMs: number },
): Promise<{ status: string; nextAttemptAt: Date | null }> {
  const d = webhookDeliveries;
  return db.transaction(async (tx) => {
    const next = sql`now() + make_interval(secs => ${retry.delayMs / 1000}::double precision)`;
    const expired = sql`${next} > (SELECT created_at FROM ${webhookEvents} WHERE id = ${delivery.eventId}) + make_interval(secs => ${retry.maxAgeMs / 1000}::double precision)`;
    const status = result.ok ? sql`'delivered'` : sql`CASE WHEN ${expired} THEN 'failed' ELSE 'pending' END`;
    const [row] = await tx
      .update(d)
      .set({
        attempts: sql`${d.attempts} + 1`,
        status,
        nextAttemptAt: result.ok
          ? sql`${d.nextAttemptAt}`
          : sql`CASE WHEN ${expired} THEN ${d.nextAttemptAt} ELSE ${next} END`,
        claimedBy: null,
        leaseExpiresAt: null,
        finishedAt: result.ok ? sql`now()` : sql`CASE WHEN ${expired} THEN now() ELSE NULL END`,
      })
      .where(and(eq(d.id, delivery.id), eq(d.claimedBy, dispatcherId), eq(d.status, "pending")))
      .returning({ status: d.status, nextAttemptAt: d.nextAttemptAt, attempts: d.attempts });
    // a lease lost meanwhile (another dispatcher retried it): the attempt is still recorded
    const nextAttemptAt = row && row.status === "pending" ? row.nextAttemptAt : null;
    await tx.insert(webhookDeliveryAttempts).values({
      id: `whatt_${randomAlphanumeric(24)}`,
      deliveryId: delivery.id,
      endpointId: delivery.endpointId,
      projectId: delivery.projectId,
      eventId: delivery.eventId,
      eventType: delivery.eventType,
      attempt: row?.attempts ?? delivery.attempts + 1,
      statusCode: result.statusCode,
      error: result.error,
      durationMs: result.durationMs,
      responseExcerpt: result.responseExcerpt,
      nextAttemptAt,
    });
    return { status: row?.status ?? "lost", nextAttemptAt };
  });
}
