// The event types a webhook endpoint can subscribe to. The first three are OpenAI's
// (fine_tuning.job.succeeded / failed / cancelled, payload {id, object, type, created_at,
// data: {id}}); the others are ours.

export const OPENAI_EVENT_TYPES = [
  "fine_tuning.job.succeeded",
  "fine_tuning.job.failed",
  "fine_tuning.job.cancelled",
] as const;

export const EXTENSION_EVENT_TYPES = [
  "fine_tuning.job.running",
  "fine_tuning.job.checkpoint.created",
] as const;

export const WEBHOOK_EVENT_TYPES: readonly string[] = [...OPENAI_EVENT_TYPES, ...EXTENSION_EVENT_TYPES];

export type JobWebhookEventType =
  | (typeof OPENAI_EVENT_TYPES)[number]
  | (typeof EXTENSION_EVENT_TYPES)[number];

/** Sent by POST /v1/webhook_endpoints/{id}/test to that endpoint only, whatever it subscribes to. */
export const TEST_EVENT_TYPE = "webhook_endpoint.test";

/** An endpoint's `events` (null = all) as the API shows it. */
export function subscribedTypes(events: string[] | null): string[] {
  return events ?? [...WEBHOOK_EVENT_TYPES];
}
