// The outbox: an event is written in the caller's transaction (the one that sets a job's final
// status), with one pending delivery per endpoint of the project that subscribes to its type,
// and a NOTIFY that wakes the dispatchers once it commits. A rolled-back transaction leaves no
// event; a committed one is delivered even if this process dies right after (any api or worker
// process's dispatcher picks it up).
import { and, eq, sql } from "drizzle-orm";
import type { Queryable } from "../blobs/blob-store.js";
import { webhookDeliveries, webhookEndpoints, webhookEvents } from "../db/schema.js";
import { randomAlphanumeric } from "../ids.js";
import { type JobWebhookEventType, TEST_EVENT_TYPE } from "./webhook-event-types.js";

/** The channel dispatchers LISTEN on (payload: the event id). */
export const WEBHOOKS_CHANNEL = "webhook_deliveries";

export const newEventId = () => `evt_${randomAlphanumeric(24)}`;
export const newDeliveryId = () => `whdel_${randomAlphanumeric(24)}`;

export interface WebhookEventPayload {
  id: string;
  object: "event";
  type: string;
  created_at: number;
  data: { id: string };
}

/**
 * Writes the event and its deliveries; `onlyEndpointId` limits it to one endpoint (test
 * events). Returns the payload, or null when no endpoint wants it (nothing is written).
 */
export async function enqueueWebhookEvent(
  tx: Queryable,
  projectId: string,
  type: string,
  data: { id: string },
  onlyEndpointId?: string,
): Promise<WebhookEventPayload | null> {
  const endpoints = await tx
    .select({ id: webhookEndpoints.id, events: webhookEndpoints.events })
    .from(webhookEndpoints)
    .where(
      onlyEndpointId === undefined
        ? eq(webhookEndpoints.projectId, projectId)
        : and(eq(webhookEndpoints.projectId, projectId), eq(webhookEndpoints.id, onlyEndpointId)),
    );
  const targets = endpoints.filter(
    (e) => onlyEndpointId !== undefined || e.events === null || e.events.includes(type),
  );
  if (targets.length === 0) return null;
  const payload: WebhookEventPayload = {
    id: newEventId(),
    object: "event",
    type,
    created_at: Math.floor(Date.now() / 1000),
    data,
  };
  await tx
    .insert(webhookEvents)
    .values({ id: payload.id, projectId, type, payload: JSON.stringify(payload) });
  await tx.insert(webhookDeliveries).values(
    targets.map((e) => ({
      id: newDeliveryId(),
      eventId: payload.id,
      endpointId: e.id,
      projectId,
      status: "pending",
    })),
  );
  await tx.execute(sql`SELECT pg_notify(${WEBHOOKS_CHANNEL}, ${payload.id})`);
  return payload;
}

/** Call inside the transaction that moves the job to the state the event announces. */
export async function enqueueJobWebhookEvent(
  tx: Queryable,
  job: { id: string; projectId: string },
  type: JobWebhookEventType,
): Promise<void> {
  await enqueueWebhookEvent(tx, job.projectId, type, { id: job.id });
}

/** null when the project has no such endpoint. */
export function enqueueTestEvent(
  tx: Queryable,
  projectId: string,
  endpointId: string,
): Promise<WebhookEventPayload | null> {
  return enqueueWebhookEvent(tx, projectId, TEST_EVENT_TYPE, { id: endpointId }, endpointId);
}
