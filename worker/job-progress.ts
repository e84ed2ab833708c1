// The running job's writes while it trains (step events, the estimated finish, epoch
// checkpoints), queued in order and written by flush(). Training does not wait for the
// database: when a write fails because the connection or server is gone, the writes stay
// queued and training goes on; the next flush after a backoff writes them all, in order.
//
// Every flush first locks the job's row and checks that this worker still owns it: after an
// outage long enough for the lease to expire, another worker may have taken the job over, and
// then nothing queued is written (`lost` turns true and the run must stop). Event ids are
// chosen when queued, so a write retried after a commit whose answer was lost adds nothing.
//
//   const progress = new JobProgress({ database, jobId, workerId, leaseSeconds, log });
//   progress.addEvents([...], estimatedFinish);
//   progress.addTask(() => storeCheckpoint(...));   // false = the job is no longer ours
//   await progress.flush();                          // never throws for a lost connection
//   if (progress.lost) stop();
//   await progress.drain(() => shuttingDown());      // before publishing: all written
import type { DatabaseHandle } from "../src/store/db/client.js";
import { backoffDelay } from "../src/store/db/retry-transient.js";
import { isTransientDatabaseError } from "../src/store/db/transient-error.js";
import type { NewEvent } from "../src/store/jobs/job-events.js";
import { newEventId } from "../src/store/jobs/job-ids.js";
import { writeProgress } from "../src/store/jobs/job-lease.js";

type Pending =
  | { kind: "events"; events: NewEvent[]; estimatedFinish?: Date }
  /** resolves false when the job is no longer this worker's */
  | { kind: "task"; run: () => Promise<boolean> };

export interface JobProgressOptions {
  database: DatabaseHandle;
  jobId: string;
  workerId: string;
  leaseSeconds: number;
  log: (message: string) => void;
}

export class JobProgress {
  private queue: Pending[] = [];
  private failures = 0;
  private retryAt = 0;
  private outageSince: number | null = null;
  private flushing: Promise<void> | null = null;
  /** true once the job was found to belong to another worker: nothing more is written */
  lost = false;

  constructor(private readonly opts: JobProgressOptions) {}

  /** Queues events (and the new estimated finish) to be written at the next flush. */
  addEvents(events: NewEvent[], estimatedFinish?: Date): void {
    if (this.lost) return;
    const withIds = events.map((e) => ({ ...e, id: e.id ?? newEventId() }));
    this.queue.push({ kind: "events", events: withIds, estimatedFinish });
  }

  /** Queues a write of its own (a checkpoint), run in order after what is queued before it. */
  addTask(run: () => Promise<boolean>): void {
    if (!this.lost) this.queue.push({ kind: "task", run });
  }

  get pending(): number {
    return this.queue.length;
  }

  /** False while the database is known to be away and the next try is not due yet. */
  databaseDue(): boolean {
    return Date.now() >= this.retryAt;
  }

  /**
   * Writes what is queued, unless the database failed recently and its backoff is not over.
   * Returns true when the queue is empty. Errors other than a lost connection are thrown.
   */
  async flush(): Promise<boolean> {
    while (this.flushing) await this.flushing;
    if (this.lost) return false;
    if (this.queue.length === 0) return true;
    if (!this.databaseDue()) return false;
    const run = this.writeQueue();
    this.flushing = run.then(
      () => {},
      () => {},
    );
    try {
      await run;
    } catch (err) {
      if (!isTransientDatabaseError(err)) throw err;
      this.failures += 1;
      const delay = backoffDelay(this.failures, 250, 5_000);
      this.retryAt = Date.now() + delay;
      if (this.outageSince === null) {
        this.outageSince = Date.now();
        this.opts.log(
          `job ${this.opts.jobId}: database unavailable (${(err as Error).message}); training goes on, progress is kept until it is back`,
        );
      }
    } finally {
      this.flushing = null;
    }
    return this.queue.length === 0 && !this.lost;
  }

  /** Flushes until everything is written or the job is lost; `giveUp` ends the wait early. */
  async drain(giveUp: () => boolean = () => false): Promise<"written" | "lost" | "gave_up"> {
    for (;;) {
      if (await this.flush()) return "written";
      if (this.lost) return "lost";
      if (giveUp()) return "gave_up";
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(50, Math.min(1000, this.retryAt - Date.now()))),
      );
    }
  }

  private async writeQueue(): Promise<void> {
    const { db } = this.opts.database;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (head.kind === "task") {
        if (!(await head.run())) this.markLost();
        else this.queue.shift();
        if (this.lost) return;
        continue;
      }
      // every queued events entry up to the next task, in one transaction
      let n = 0;
      while (n < this.queue.length && this.queue[n]!.kind === "events") n++;
      const batch = this.queue.slice(0, n) as Extract<Pending, { kind: "events" }>[];
      const estimatedFinish = batch
        .map((p) => p.estimatedFinish)
        .filter((d) => d !== undefined)
        .at(-1);
      const owned = await writeProgress(
        db,
        this.opts,
        batch.flatMap((p) => p.events),
        estimatedFinish,
      );
      if (!owned) {
        this.markLost();
        return;
      }
      this.queue.splice(0, n);
    }
    if (this.outageSince !== null) {
      this.opts.log(
        `job ${this.opts.jobId}: database is back after ${((Date.now() - this.outageSince) / 1000).toFixed(1)} s; queued progress written`,
      );
    }
    this.outageSince = null;
    this.failures = 0;
    this.retryAt = 0;
  }

  private markLost(): void {
    if (!this.lost)
      this.opts.log(`job ${this.opts.jobId}: owned by another worker now; its queued progress is dropped`);
    this.lost = true;
    this.queue = [];
  }
}
