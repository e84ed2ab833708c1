// Periodic clean-up: bytes of uploads whose writer died, expired files, expired uploads' parts,
// webhook events older than the retention whose deliveries are done.
// Every api process runs it; the statements are idempotent, so several at once are harmless.
import { sweepAbandonedBlobs } from "./blobs/blob-store.js";
import type { Database } from "./db/client.js";
import { sweepExpiredFiles } from "./files/file-repository.js";
import { sweepExpiredUploads } from "./files/upload-repository.js";
import { sweepOldWebhookEvents } from "./webhooks/webhook-retention.js";

/** The two pino calls the sweeper makes (Fastify's logger is one). */
export interface SweepLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export async function sweepOnce(
  db: Database,
): Promise<{ blobs: number; files: number; uploads: number; webhookEvents: number }> {
  return {
    blobs: await sweepAbandonedBlobs(db),
    files: await sweepExpiredFiles(db),
    uploads: await sweepExpiredUploads(db),
    webhookEvents: await sweepOldWebhookEvents(db),
  };
}

/** Runs sweepOnce now and every `intervalMs`; returns a stop function. */
export function startSweeper(db: Database, log: SweepLog, intervalMs = 60_000): () => void {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      const swept = await sweepOnce(db);
      if (swept.blobs + swept.files + swept.uploads + swept.webhookEvents > 0)
        log.info({ swept }, "swept expired and abandoned data");
    } catch (err) {
      log.warn({ err }, "sweep failed; will retry");
    } finally {
      running = false;
    }
  };
  void tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
