// The NOTIFY that wakes idle workers when a job becomes claimable (queued, resumed, requeued).
import { sql } from "drizzle-orm";
import type { Queryable } from "../blobs/blob-store.js";

/** The channel workers LISTEN on; the payload is the job id. */
export const JOBS_CHANNEL = "fine_tuning_jobs";

/** Sent inside the transaction that queues the job, so it arrives once that commits. */
export async function notifyWorkers(q: Queryable, jobId: string): Promise<void> {
  await q.execute(sql`SELECT pg_notify(${JOBS_CHANNEL}, ${jobId})`);
}
