// The rules of a fine-tuning job's life: which status each transition leaves from, where it
// goes, and who may hold the job's lease meanwhile. checkTransition is the one place a move is
// allowed or refused; job-state-machine.ts asks it with the job's row locked.
//
//   (create) ─▶ validating_files ─queue─▶ queued ─claim─▶ running ─succeed─▶ succeeded
//                    │ reject, fail           ▲              │ fail ─▶ failed
//                    ▼                        │              └ requeue (worker shutdown) ─▶ queued
//                  failed            resume: paused ─▶ queued
//   pause: validating_files | queued | running ─▶ paused (the worker parks it at its next step)
//   cancel: validating_files | queued | running | paused ─▶ cancelled
import type { JobRow, JobStatus } from "./job-objects.js";

/**
 * Who may hold the job's lease: `any` (the user's own actions, even while a worker trains),
 * `none` (the api's file validation: not once a worker's fallback claim took the job), `self`
 * (the worker's own moves: only while it still owns the job).
 */
export type LeaseHolder = "any" | "none" | "self";

export interface TransitionRule {
  from: readonly JobStatus[];
  /** null: the status stays; the write is guarded by it all the same */
  to: JobStatus | null;
  holder: LeaseHolder;
}

const ACTIVE = ["validating_files", "queued", "running", "paused"] as const;
/** A worker at work: running, or validating the files of a job it claimed as the fallback. */
const WORKING = ["validating_files", "running"] as const;

export const JOB_TRANSITIONS = {
  // the api, right after create: the files' verdict
  queue: { from: ["validating_files"], to: "queued", holder: "none" },
  reject: { from: ["validating_files"], to: "failed", holder: "none" },
  // the user
  cancel: { from: ACTIVE, to: "cancelled", holder: "any" },
  pause: { from: ["validating_files", "queued", "running"], to: "paused", holder: "any" },
  resume: { from: ["paused"], to: "queued", holder: "any" },
  // the worker that holds the lease (claimJob takes it: queued → running, see job-state-machine.ts)
  start: { from: WORKING, to: "running", holder: "self" },
  /** the owner's writes while it works: checkpoints, the record of a resume */
  record: { from: WORKING, to: null, holder: "self" },
  fail: { from: WORKING, to: "failed", holder: "self" },
  succeed: { from: ["running"], to: "succeeded", holder: "self" },
  /** a pause landed: the resume state is stored and the lease let go (resumed meanwhile: queued) */
  park: { from: ["paused", "queued"], to: null, holder: "self" },
  /** the worker shuts down: the resume state is stored and the job goes back to the queue */
  requeue: { from: ["running"], to: "queued", holder: "self" },
} as const satisfies Record<string, TransitionRule>;

export type JobTransition = keyof typeof JOB_TRANSITIONS;

/** The caller: a project (the api scopes every job to it) and/or a worker. */
export interface JobActor {
  projectId?: string;
  workerId?: string;
}

/** missing: no such job (another project's job is a missing job); refused: not from its state. */
export type TransitionVerdict = "allowed" | "missing" | "refused";

export function checkTransition(
  transition: JobTransition,
  job: Pick<JobRow, "status" | "workerId" | "projectId"> | null,
  actor: JobActor,
): TransitionVerdict {
  if (!job || (actor.projectId !== undefined && job.projectId !== actor.projectId)) return "missing";
  const rule: TransitionRule = JOB_TRANSITIONS[transition];
  if (!rule.from.includes(job.status as JobStatus)) return "refused";
  if (rule.holder === "none" && job.workerId !== null) return "refused";
  if (rule.holder === "self" && (actor.workerId === undefined || job.workerId !== actor.workerId))
    return "refused";
  return "allowed";
}
