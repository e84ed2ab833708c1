// LISTEN for new work: the api NOTIFYs `fine_tuning_jobs` (payload: the job id) when a job is
// created, resumed or re-queued, and idle workers wake at once instead of at their next poll
// (WORKER_POLL_SECONDS covers lost notifications).
import type { DatabaseHandle } from "../src/store/db/client.js";
import { listenOnChannel } from "../src/store/db/listen-channel.js";
import { JOBS_CHANNEL } from "../src/store/jobs/jobs-channel.js";

/** Calls onWake on every notification; resolves to a function that stops listening. */
export function listenForJobs(
  database: DatabaseHandle,
  onWake: () => void,
  log: (message: string) => void = () => {},
): Promise<() => Promise<void>> {
  return listenOnChannel(database, JOBS_CHANNEL, onWake, log);
}
