// The claim loop shared by `npm run worker` (worker/main.ts), the in-process worker of the
// embedded server (src/server.ts) and the tests: claim one job, run it, repeat; when there is
// nothing to do, sleep until a NOTIFY or the slow poll. stop() asks the running job to
// checkpoint and go back to the queue at its next step, then resolves once the loop is out.
//
//   const worker = await startWorker({ database, modelsDir, settings, log });
//   …
//   await worker.stop();
import type { WorkerSettings } from "../src/config.js";
import type { DatabaseHandle } from "../src/store/db/client.js";
import { claimJob } from "../src/store/jobs/job-state-machine.js";
import { listenForJobs } from "./job-wakeup.js";
import { type JobOutcome, runJob } from "./run-job.js";

export interface StartWorkerOptions {
  database: DatabaseHandle;
  modelsDir: string;
  settings: WorkerSettings;
  log?: (message: string) => void;
  /** called after each job (tests, metrics) */
  onJobDone?: (jobId: string, outcome: JobOutcome) => void;
}

export interface RunningWorker {
  readonly workerId: string;
  /** finish or checkpoint the current step, re-queue the job, and leave the loop */
  stop(): Promise<void>;
  /** resolves when the loop has ended */
  readonly done: Promise<void>;
}

export async function startWorker(opts: StartWorkerOptions): Promise<RunningWorker> {
  const { database, settings } = opts;
  const log = opts.log ?? (() => {});
  let stopping = false;
  let wake: (() => void) | null = null;
  const wakeUp = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const unlisten = await listenForJobs(database, wakeUp, log);

  const sleep = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wake = null;
        resolve();
      }, settings.pollSeconds * 1000);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const loop = async (): Promise<void> => {
    while (!stopping) {
      let claimed: Awaited<ReturnType<typeof claimJob>> = null;
      try {
        claimed = await claimJob(database.db, settings.workerId, settings.leaseSeconds);
      } catch (err) {
        log(`claim failed: ${(err as Error).message}`);
      }
      if (!claimed) {
        if (!stopping) await sleep();
        continue;
      }
      log(
        `worker ${settings.workerId}: claimed ${claimed.job.id}${claimed.takenOver ? " (taken over)" : ""}`,
      );
      const outcome = await runJob(
        {
          database,
          modelsDir: opts.modelsDir,
          workerId: settings.workerId,
          leaseSeconds: settings.leaseSeconds,
          microBatchSize: settings.microBatchSize,
          shuttingDown: () => stopping,
          log,
        },
        claimed,
      );
      log(`worker ${settings.workerId}: ${claimed.job.id} → ${outcome}`);
      opts.onJobDone?.(claimed.job.id, outcome);
    }
  };
  const done = loop().finally(() => unlisten());
  return {
    workerId: settings.workerId,
    done,
    async stop() {
      stopping = true;
      wakeUp();
      await done;
    },
  };
}
