// Old webhook events go, with their deliveries and attempt log (ON DELETE CASCADE), once
// nothing is left to send: the outbox and the log stay bounded. A delivery gives up 72 hours
// after its event, so only an event with no dispatcher running for a month is kept past this.
import { sql } from "drizzle-orm";
import type { Database } from "../db/client.js";
import { webhookDeliveries, webhookEvents } from "../db/schema.js";

export const WEBHOOK_RETENTION_DAYS = 30;

export async function sweepOldWebhookEvents(
  db: Database,
  retentionDays = WEBHOOK_RETENTION_DAYS,
): Promise<number> {
  const deleted = await db
    .delete(webhookEvents)
    .where(
      sql`${webhookEvents.createdAt} < now() - make_interval(days => ${retentionDays}::int)
        AND NOT EXISTS (SELECT 1 FROM ${webhookDeliveries}
                        WHERE ${webhookDeliveries.eventId} = ${webhookEvents.id} AND ${webhookDeliveries.status} = 'pending')`,
    )
    .returning({ id: webhookEvents.id });
  return deleted.length;
}
