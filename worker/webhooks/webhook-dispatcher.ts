// Sends pending webhook deliveries. Every api process and every worker runs one: it claims due
// deliveries (delivery-queue.ts), posts each signed with its endpoint's current secret and a
// fresh timestamp (same webhook-id on every attempt, so receivers can drop duplicates), and
// records the attempt. Woken by NOTIFY when an event is written, and polls as a fallback for
// retries coming due and for notifications lost while a connection was down.
//
//   const dispatcher = await startWebhookDispatcher({ database, allowPrivate: false, log });
//   …
//   await dispatcher.stop();
import { hostname } from "node:os";
import type { DatabaseHandle } from "../../src/store/db/client.js";
import { randomAlphanumeric } from "../../src/store/ids.js";
import { claimDueDeliveries, recordAttempt } from "../../src/store/webhooks/delivery-queue.js";
import { signWebhook } from "../../src/store/webhooks/webhook-signature.js";
import { listenForWebhookEvents } from "./delivery-wakeup.js";
import { postWebhook } from "./post-webhook.js";
import { DEFAULT_RETRY_SCHEDULE, type RetrySchedule, retryDelayMs } from "./retry-schedule.js";

export interface WebhookDispatcherOptions {
  database: DatabaseHandle;
  /** WEBHOOK_ALLOW_PRIVATE: deliver to loopback/private addresses too */
  allowPrivate: boolean;
  log?: (message: string) => void;
  retry?: RetrySchedule;
  /** idle poll, for retries coming due (default 2 s) */
  pollMs?: number;
  /** per attempt, the whole exchange (default 10 s) */
  timeoutMs?: number;
  /** a claim's lease; longer than an attempt (default 60 s) */
  leaseSeconds?: number;
  /** deliveries in flight at once (default 8) */
  concurrency?: number;
  /** response bytes kept per attempt (default 512) */
  excerptBytes?: number;
}

export interface WebhookDispatcher {
  readonly id: string;
  stop(): Promise<void>;
}

const USER_AGENT = "tunehouse-webhooks/1";

export async function startWebhookDispatcher(opts: WebhookDispatcherOptions): Promise<WebhookDispatcher> {
  const id = `${hostname()}-${process.pid}-webhooks-${randomAlphanumeric(4)}`;
  const log = opts.log ?? (() => {});
  const retry = opts.retry ?? DEFAULT_RETRY_SCHEDULE;
  const pollMs = opts.pollMs ?? 2000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const leaseSeconds = opts.leaseSeconds ?? 60;
  const concurrency = opts.concurrency ?? 8;
  const excerptBytes = opts.excerptBytes ?? 512;
  const { db } = opts.database;

  let stopping = false;
  let wake: (() => void) | null = null;
  let woken = false;
  const wakeUp = () => {
    woken = true;
    const w = wake;
    wake = null;
    w?.();
  };
  const unlisten = await listenForWebhookEvents(opts.database, wakeUp, log);
  const sleep = () =>
    new Promise<void>((resolve) => {
      if (woken) return resolve();
      const timer = setTimeout(() => {
        wake = null;
        resolve();
      }, pollMs);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const deliverOne = async (delivery: Awaited<ReturnType<typeof claimDueDeliveries>>[number]) => {
    const headers = {
      "content-type": "application/json",
      "user-agent": USER_AGENT,
      ...signWebhook(delivery.secrets, delivery.eventId, Math.floor(Date.now() / 1000), delivery.payload),
    };
    const result = await postWebhook({
      url: delivery.url,
      headers,
      body: delivery.payload,
      timeoutMs,
      allowPrivate: opts.allowPrivate,
      excerptBytes,
    });
    const outcome = await recordAttempt(db, delivery, id, result, {
      delayMs: retryDelayMs(retry, delivery.attempts + 1),
      maxAgeMs: retry.maxAgeMs,
    });
    log(
      `webhooks: ${delivery.eventType} ${delivery.eventId} → ${delivery.endpointId} attempt ${delivery.attempts + 1}: ` +
        `${result.ok ? `HTTP ${result.statusCode}` : result.error} (${outcome.status})`,
    );
  };

  const loop = async () => {
    while (!stopping) {
      woken = false;
      let batch: Awaited<ReturnType<typeof claimDueDeliveries>> = [];
      try {
        batch = await claimDueDeliveries(db, id, leaseSeconds, concurrency);
      } catch (err) {
        log(`webhooks: claim failed: ${(err as Error).message}`);
      }
      if (batch.length === 0) {
        if (!stopping) await sleep();
        continue;
      }
      await Promise.all(
        batch.map((d) =>
          deliverOne(d).catch((err) =>
            log(`webhooks: delivery ${d.id} not recorded: ${(err as Error).message}`),
          ),
        ),
      );
    }
  };
  const done = loop().finally(() => unlisten());
  return {
    id,
    async stop() {
      stopping = true;
      wakeUp();
      await done;
    },
  };
}
