// The job state machine: the rules (checkTransition) for every transition, and the transitions
// on a database: each allowed one writes its status, events and webhook event in one
// transaction; a refused one writes nothing (the user's get a DomainError: 404 or 400 naming
// the status). PGlite, and Postgres when TEST_DATABASE_URL is set.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { asc, eq } from "drizzle-orm";
import { ensureProject } from "../../../src/store/auth/api-keys.js";
import { startBlob } from "../../../src/store/blobs/blob-store.js";
import { fineTuningJobEvents, fineTuningJobs, webhookEvents } from "../../../src/store/db/schema.js";
import { DomainError } from "../../../src/store/domain-error.js";
import type { JobRow, JobStatus } from "../../../src/store/jobs/job-objects.js";
import {
  cancelJob,
  claimJob,
  createJob,
  failJob,
  pauseJob,
  queueValidatedJob,
  rejectJobFiles,
  resumeJob,
  startJob,
  succeedJob,
  suspendJob,
} from "../../../src/store/jobs/job-state-machine.js";
import {
  checkTransition,
  JOB_TRANSITIONS,
  type JobTransition,
} from "../../../src/store/jobs/job-transitions.js";
import { createEndpoint } from "../../../src/store/webhooks/endpoint-repository.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";

const ALL: JobStatus[] = [
  "validating_files",
  "queued",
  "running",
  "paused",
  "succeeded",
  "failed",
  "cancelled",
];

describe("checkTransition", () => {
  const job = (status: JobStatus, workerId: string | null = null) => ({ status, workerId, projectId: "p" });

  it("allows each transition from exactly its statuses", () => {
    const allowedFrom = (t: JobTransition) =>
      ALL.filter((s) => checkTransition(t, job(s, "w"), { projectId: "p", workerId: "w" }) === "allowed");
    assert.deepEqual(allowedFrom("cancel"), ["validating_files", "queued", "running", "paused"]);
    assert.deepEqual(allowedFrom("pause"), ["validating_files", "queued", "running"]);
    assert.deepEqual(allowedFrom("resume"), ["paused"]);
    assert.deepEqual(allowedFrom("start"), ["validating_files", "running"]);
    assert.deepEqual(allowedFrom("record"), ["validating_files", "running"]);
    assert.deepEqual(allowedFrom("fail"), ["validating_files", "running"]);
    assert.deepEqual(allowedFrom("succeed"), ["running"]);
    assert.deepEqual(allowedFrom("park"), ["queued", "paused"]);
    assert.deepEqual(allowedFrom("requeue"), ["running"]);
    // held by a worker: the api's validation step no longer decides
    assert.deepEqual(allowedFrom("queue"), []);
    for (const s of ["succeeded", "failed", "cancelled"] as const) {
      for (const t of Object.keys(JOB_TRANSITIONS) as JobTransition[])
        assert.notEqual(checkTransition(t, job(s, "w"), { workerId: "w" }), "allowed", `${t} from ${s}`);
    }
  });

  it("the api's validation needs an unclaimed job; the worker's moves need its own lease", () => {
    assert.equal(checkTransition("queue", job("validating_files"), {}), "allowed");
    assert.equal(checkTransition("reject", job("validating_files", "w"), {}), "refused");
    assert.equal(checkTransition("start", job("running", "w"), { workerId: "w" }), "allowed");
    assert.equal(checkTransition("start", job("running", "other"), { workerId: "w" }), "refused");
    assert.equal(checkTransition("fail", job("running", null), { workerId: "w" }), "refused");
    assert.equal(checkTransition("fail", job("running", "w"), {}), "refused", "a worker must say who it is");
  });

  it("another project's job is missing, as is no job", () => {
    assert.equal(checkTransition("cancel", job("queued"), { projectId: "q" }), "missing");
    assert.equal(checkTransition("cancel", null, { projectId: "p" }), "missing");
    assert.equal(checkTransition("cancel", job("queued", "w"), { projectId: "p" }), "allowed");
  });
});

for (const target of testDatabases()) {
  describe(`job transitions in the database [${target.name}]`, () => {
    let db: TestDatabase;
    let projectId: string;

    before(async () => {
      db = await target.open();
      projectId = (await ensureProject(db.handle.db, "state-machine")).id;
      await createEndpoint(db.handle.db, projectId, {
        url: "https://example.com/hook",
        events: null,
        description: null,
      });
    });
    after(() => db?.dispose());

    const newJob = () =>
      createJob(db.handle.db, projectId, {
        model: "tiny",
        trainingFile: "file-x",
        validationFile: null,
        method: { type: "supervised", supervised: { hyperparameters: {} } },
        suffix: null,
        seed: 1,
        metadata: null,
        integrations: null,
      });
    const row = async (id: string): Promise<JobRow> =>
      (await db.handle.db.select().from(fineTuningJobs).where(eq(fineTuningJobs.id, id)))[0];
    const messages = async (id: string) =>
      (
        await db.handle.db
          .select({ message: fineTuningJobEvents.message })
          .from(fineTuningJobEvents)
          .where(eq(fineTuningJobEvents.jobId, id))
          .orderBy(asc(fineTuningJobEvents.seq))
      ).map((e) => e.message);
    const webhooks = async (id: string) =>
      (await db.handle.db.select().from(webhookEvents).where(eq(webhookEvents.projectId, projectId)))
        .filter((e) => (JSON.parse(e.payload) as { data: { id: string } }).data.id === id)
        .map((e) => e.type);
    /** A job as the worker `w` holds it once claimed. */
    const runningJob = async (): Promise<JobRow> => {
      const job = await newJob();
      assert.equal(await queueValidatedJob(db.handle.db, job.id), true);
      const claimed = await claimJob(db.handle.db, "w", 60);
      assert.equal(claimed?.job.id, job.id);
      assert.equal(claimed.job.status, "running");
      return claimed.job;
    };
    /** A written blob (the resume state and adapter columns reference blobs). */
    const blob = async () => {
      const writer = await startBlob(db.handle, projectId);
      await writer.write(new Uint8Array([1, 2, 3]));
      await writer.finish();
      return writer;
    };
    const refusal = (status: string) => (err: unknown) =>
      err instanceof DomainError &&
      err.kind === "invalid_request" &&
      err.code === "invalid_job_status" &&
      err.message.includes(`its status is '${status}'`);

    it("create → queue → claim → start → succeed, with their events and webhooks", async () => {
      const job = await runningJob();
      const method = { type: "supervised" as const, supervised: { hyperparameters: { n_epochs: 1 } } };
      const start = { method, events: [{ message: "Fine-tuning job started" }], firstStart: true };
      assert.equal(await startJob(db.handle.db, job, "w", start), true);
      assert.deepEqual((await row(job.id)).method, method);
      assert.equal(await startJob(db.handle.db, job, "other", start), false, "not the owner");
      const file = { id: "file-results", blobId: "blob-none", bytes: 0 };
      const trained = {
        modelName: `ft:tiny:${job.id}`,
        trainedTokens: 5,
        adapterBlobId: "x",
        resultFile: file,
      };
      assert.equal(await succeedJob(db.handle.db, job, "other", trained), "refused");
      assert.equal((await row(job.id)).status, "running");
      const adapter = await blob();
      const results = await blob();
      const real = {
        ...trained,
        adapterBlobId: adapter.blobId,
        resultFile: { ...file, blobId: results.blobId },
      };
      assert.equal(await succeedJob(db.handle.db, job, "w", real), "succeeded");
      assert.equal(await succeedJob(db.handle.db, job, "w", real), "published_before", "a retried publish");
      const done = await row(job.id);
      assert.equal(done.status, "succeeded");
      assert.equal(done.fineTunedModel, trained.modelName);
      assert.deepEqual(done.resultFiles, ["file-results"]);
      assert.equal(done.workerId, null);
      assert.deepEqual(await messages(job.id), [
        `Created fine-tuning job: ${job.id}`,
        "Validating training file: file-x",
        "Files validated, moving job to queued state",
        "Fine-tuning job started",
        `New fine-tuned model created: ${trained.modelName}`,
        "The job has successfully completed",
      ]);
      assert.deepEqual((await webhooks(job.id)).sort(), [
        "fine_tuning.job.running",
        "fine_tuning.job.succeeded",
      ]);
    });

    it("the user's cancel, pause and resume; refused from the wrong status with nothing written", async () => {
      const job = await newJob();
      await assert.rejects(resumeJob(db.handle.db, projectId, job.id), refusal("validating_files"));
      assert.equal((await pauseJob(db.handle.db, projectId, job.id)).status, "paused");
      await assert.rejects(pauseJob(db.handle.db, projectId, job.id), refusal("paused"));
      assert.equal((await resumeJob(db.handle.db, projectId, job.id)).status, "queued");
      const cancelled = await cancelJob(db.handle.db, projectId, job.id);
      assert.equal(cancelled.status, "cancelled");
      assert.ok(cancelled.finishedAt);
      await assert.rejects(cancelJob(db.handle.db, projectId, job.id), refusal("cancelled"));
      assert.equal(await queueValidatedJob(db.handle.db, job.id), false);
      assert.deepEqual((await messages(job.id)).slice(2), [
        "Pause requested: the job checkpoints at its next step and pauses",
        "Job resumed: queued to continue from its latest checkpoint",
        "The job was cancelled",
      ]);
      assert.deepEqual(await webhooks(job.id), ["fine_tuning.job.cancelled"]);
    });

    it("another project's job is not found", async () => {
      const job = await newJob();
      const other = (await ensureProject(db.handle.db, "someone-else")).id;
      await assert.rejects(
        cancelJob(db.handle.db, other, job.id),
        (err: unknown) => err instanceof DomainError && err.kind === "not_found",
      );
      assert.equal((await row(job.id)).status, "validating_files");
      await cancelJob(db.handle.db, projectId, job.id);
    });

    it("rejected files fail the job once; a worker's failure needs its lease", async () => {
      const job = await newJob();
      const error = { code: "invalid_training_file", message: "Too few examples", param: "training_file" };
      assert.equal(await rejectJobFiles(db.handle.db, job.id, error), true);
      assert.equal(await rejectJobFiles(db.handle.db, job.id, error), false);
      const failed = await row(job.id);
      assert.equal(failed.status, "failed");
      assert.deepEqual(failed.error, error);
      assert.deepEqual((await messages(job.id)).at(-1), "The job failed: Too few examples");
      assert.deepEqual(await webhooks(job.id), ["fine_tuning.job.failed"]);

      const running = await runningJob();
      assert.equal(await failJob(db.handle.db, running, "other", error), false);
      assert.equal(await failJob(db.handle.db, running, "w", error), true);
      const after = await row(running.id);
      assert.equal(after.status, "failed");
      assert.equal(after.workerId, null, "the lease is let go");
    });

    it("a pause parks the job (status kept); a shutdown requeues it; both need the lease", async () => {
      const job = await runningJob();
      await pauseJob(db.handle.db, projectId, job.id);
      assert.equal(
        await suspendJob(db.handle.db, job, "w", "requeue", { step: 3, resumeBlobId: "b" }),
        false,
      );
      const state = await blob();
      assert.equal(
        await suspendJob(db.handle.db, job, "w", "park", { step: 3, resumeBlobId: state.blobId }),
        true,
      );
      const parked = await row(job.id);
      assert.equal(parked.status, "paused");
      assert.equal(parked.resumeStep, 3);
      assert.equal(parked.workerId, null);
      assert.equal((await messages(job.id)).at(-1), "Job paused at step 3");

      const other = await runningJob();
      const state2 = await blob();
      assert.equal(
        await suspendJob(db.handle.db, other, "w", "requeue", { step: 2, resumeBlobId: state2.blobId }),
        true,
      );
      assert.equal((await row(other.id)).status, "queued");
      assert.equal(
        (await messages(other.id)).at(-1),
        "Worker w is shutting down: job checkpointed at step 2 and queued again",
      );
      await cancelJob(db.handle.db, projectId, job.id);
      await cancelJob(db.handle.db, projectId, other.id);
    });
  });
}
