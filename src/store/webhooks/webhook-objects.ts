// Rows → the API's objects. The secret is added only by the create and rotate answers.

import type { webhookDeliveryAttempts, webhookEndpoints } from "../db/schema.js";
import { unixSeconds } from "../unix-seconds.js";
import { subscribedTypes } from "./webhook-event-types.js";

export type EndpointRow = typeof webhookEndpoints.$inferSelect;
export type AttemptRow = typeof webhookDeliveryAttempts.$inferSelect;

export function toEndpointObject(row: EndpointRow) {
  return {
    id: row.id,
    object: "webhook_endpoint" as const,
    url: row.url,
    events: subscribedTypes(row.events),
    description: row.description,
    created_at: unixSeconds(row.createdAt),
    source: row.source,
  };
}

export function toEndpointWithSecret(row: EndpointRow) {
  return { ...toEndpointObject(row), secret: row.secret };
}

export function toAttemptObject(row: AttemptRow) {
  const ok = row.error === null && row.statusCode !== null && row.statusCode >= 200 && row.statusCode < 300;
  return {
    id: row.id,
    object: "webhook_endpoint.delivery_attempt" as const,
    delivery_id: row.deliveryId,
    event_id: row.eventId,
    event_type: row.eventType,
    attempt: row.attempt,
    status: ok ? ("succeeded" as const) : ("failed" as const),
    response_status_code: row.statusCode,
    error: row.error,
    duration_ms: row.durationMs,
    response_excerpt: row.responseExcerpt,
    created_at: unixSeconds(row.createdAt),
    next_attempt_at: row.nextAttemptAt ? unixSeconds(row.nextAttemptAt) : null,
  };
}
