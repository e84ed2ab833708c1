// What one run of a claimed job carries through its steps: the worker's options, the job's row,
// the retry of database work, the heartbeat that keeps the lease, the queued progress, and what
// must be freed at the end (the model, the parent's unpacked adapter).
import type { DatabaseHandle } from "../src/store/db/client.js";
import { retryTransient } from "../src/store/db/retry-transient.js";
import { renewLease } from "../src/store/jobs/job-lease.js";
import type { JobRow } from "../src/store/jobs/job-objects.js";
import type { CausalLM } from "./engine/model/causal-lm.js";
import type { OutputTarget } from "./job-outputs.js";
import { JobProgress } from "./job-progress.js";
import type { ParentAdapter } from "./parent-adapter.js";

export interface RunJobOptions {
  database: DatabaseHandle;
  modelsDir: string;
  workerId: string;
  leaseSeconds: number;
  /** true once the worker is asked to exit: the job checkpoints and goes back to the queue */
  shuttingDown: () => boolean;
  log: (message: string) => void;
  /** rows per forward/backward pass (the engine's default is 4) */
  microBatchSize?: number;
}

export interface Heartbeat {
  /** turns true when someone else owns the job */
  readonly state: { lost: boolean };
  stop(): void;
}

export interface JobRun {
  readonly opts: RunJobOptions;
  /** the claimed row, read again once the job runs */
  job: JobRow;
  /** Outside training, a lost connection waits for the database (with backoff) and tries again. */
  retry<T>(attempt: () => Promise<T>): Promise<T>;
  readonly heartbeat: Heartbeat;
  readonly progress: JobProgress;
  readonly held: { model: CausalLM | null; parent: ParentAdapter | null };
}

/** Keeps the claim alive; `lost` turns true when someone else owns the job. */
function startHeartbeat(opts: RunJobOptions, jobId: string): Heartbeat {
  const state = { lost: false };
  const timer = setInterval(
    () => {
      renewLease(opts.database.db, jobId, opts.workerId, opts.leaseSeconds).then(
        (status) => {
          if (status === null) state.lost = true;
        },
        (err) => opts.log(`heartbeat for ${jobId} failed: ${(err as Error).message}`),
      );
    },
    Math.max(200, (opts.leaseSeconds * 1000) / 3),
  );
  timer.unref();
  return { state, stop: () => clearInterval(timer) };
}

export function openRun(opts: RunJobOptions, job: JobRow): JobRun {
  const retry = <T>(attempt: () => Promise<T>) =>
    retryTransient(attempt, {
      giveUp: opts.shuttingDown,
      onRetry: (err, n, delay) => {
        if (n === 1 || n % 10 === 0)
          opts.log(
            `job ${job.id}: database unavailable (${(err as Error).message}); retrying in ${delay} ms`,
          );
      },
    });
  return {
    opts,
    job,
    retry,
    heartbeat: startHeartbeat(opts, job.id),
    progress: new JobProgress({
      database: opts.database,
      jobId: job.id,
      workerId: opts.workerId,
      leaseSeconds: opts.leaseSeconds,
      log: opts.log,
    }),
    held: { model: null, parent: null },
  };
}

export async function closeRun(run: JobRun): Promise<void> {
  run.heartbeat.stop();
  run.held.model?.dispose();
  await run.held.parent?.cleanup();
}

/** Where the run's outputs go: the job as it is now, under this worker. */
export const outputTarget = (run: JobRun): OutputTarget => ({
  database: run.opts.database,
  workerId: run.opts.workerId,
  job: run.job,
});
