// LISTEN for new webhook events, so a dispatcher sends at once instead of at its next poll
// (the poll covers lost notifications and a lost connection).
import type { DatabaseHandle } from "../../src/store/db/client.js";
import { listenOnChannel } from "../../src/store/db/listen-channel.js";
import { WEBHOOKS_CHANNEL } from "../../src/store/webhooks/webhook-outbox.js";

export function listenForWebhookEvents(
  database: DatabaseHandle,
  onWake: () => void,
  log: (message: string) => void,
): Promise<() => Promise<void>> {
  return listenOnChannel(database, WEBHOOKS_CHANNEL, onWake, (m) => log(`webhooks: ${m}`));
}
