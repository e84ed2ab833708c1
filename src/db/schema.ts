// The database schema (drizzle). Migrations in migrations/ are generated from this file by
// `npm run db:generate` (drizzle-kit) and applied at start, for PGlite and a Postgres server
// alike. Every resource row carries project_id: tenancy is checked in every query.
import { sql } from "drizzle-orm";
import {
  bigint,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => "bytea",
});

const createdAt = () => timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow();

export const projects = pgTable("projects", {
  id: text("id").primaryKey(),
  name: text("name").notNull().unique(),
  createdAt: createdAt(),
});

export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    /** sha256 of the key, hex; the key itself is never stored */
    keyHash: text("key_hash").notNull(),
    /** the key's first and last characters, to recognise it in `keys list` */
    keyHint: text("key_hint").notNull(),
    /** who made it: cli | env (API_KEYS) | embedded (first start) */
    source: text("source").notNull(),
    createdAt: createdAt(),
    revokedAt: timestamp("revoked_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [uniqueIndex("api_keys_key_hash_idx").on(t.keyHash)],
);

/**
 * Bytes of files (and later adapters) as ordered ~1 MiB chunks. A blob is `writing` while
 * its bytes arrive and `ready` once the owning row (file, …) commits; writing blobs that
 * stop being touched are swept (see blob-store.ts).
 */
export const blobs = pgTable(
  "blobs",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    state: text("state").notNull(),
    bytes: bigint("bytes", { mode: "number" }).notNull().default(0),
    createdAt: createdAt(),
    touchedAt: timestamp("touched_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [index("blobs_state_touched_idx").on(t.state, t.touchedAt)],
);

export const blobChunks = pgTable(
  "blob_chunks",
  {
    blobId: text("blob_id")
      .notNull()
      .references(() => blobs.id, { onDelete: "cascade" }),
    seq: integer("seq").notNull(),
    data: bytea("data").notNull(),
  },
  (t) => [primaryKey({ columns: [t.blobId, t.seq] })],
);

export const files = pgTable(
  "files",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    blobId: text("blob_id")
      .notNull()
      .references(() => blobs.id),
    filename: text("filename").notNull(),
    purpose: text("purpose").notNull(),
    bytes: bigint("bytes", { mode: "number" }).notNull(),
    status: text("status").notNull(),
    statusDetails: text("status_details"),
    /** fine-tune files: the JsonlSummary of src/files/jsonl-validator.ts */
    validation: jsonb("validation"),
    createdAt: createdAt(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    index("files_project_created_idx").on(t.projectId, t.createdAt, t.id),
    index("files_expires_idx")
      .on(t.expiresAt)
      .where(sql`${t.expiresAt} IS NOT NULL`),
  ],
);

export const uploads = pgTable(
  "uploads",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    filename: text("filename").notNull(),
    purpose: text("purpose").notNull(),
    bytes: bigint("bytes", { mode: "number" }).notNull(),
    mimeType: text("mime_type").notNull(),
    /** pending | completed | cancelled (expired is derived from expires_at) */
    status: text("status").notNull(),
    /** expires_after.seconds for the File the upload becomes */
    fileExpiresAfterSeconds: integer("file_expires_after_seconds"),
    fileId: text("file_id").references(() => files.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [index("uploads_project_idx").on(t.projectId, t.createdAt)],
);

export const uploadParts = pgTable(
  "upload_parts",
  {
    id: text("id").primaryKey(),
    uploadId: text("upload_id")
      .notNull()
      .references(() => uploads.id, { onDelete: "cascade" }),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    /** null once the part's chunks moved into the completed file's blob */
    blobId: text("blob_id").references(() => blobs.id, { onDelete: "set null" }),
    bytes: bigint("bytes", { mode: "number" }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("upload_parts_upload_idx").on(t.uploadId)],
);

// ---------------------------------------------------------------- fine-tuning

/**
 * Fine-tuning jobs. `status` moves validating_files → queued → running ⇄ paused (→ queued on
 * resume) → succeeded | failed | cancelled, each move one UPDATE guarded by the expected status
 * (src/fine-tuning/job-repository.ts, job-lease.ts, validate-job-files.ts). A worker owns a job while `worker_id` is set and
 * `lease_expires_at` is in the future; `resume_blob_id` is the latest resume state
 * (weights, optimizer, step, RNG) a new owner continues from.
 */
export const fineTuningJobs = pgTable(
  "fine_tuning_jobs",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    model: text("model").notNull(),
    /** the base model under MODELS_DIR when `model` is a tuned model (ft:…); null = `model` is the base */
    baseModel: text("base_model"),
    trainingFile: text("training_file").notNull(),
    validationFile: text("validation_file"),
    status: text("status").notNull(),
    /** {type, supervised?: {hyperparameters}}: as requested, then with the resolved numbers */
    method: jsonb("method").notNull(),
    suffix: text("suffix"),
    seed: integer("seed").notNull(),
    metadata: jsonb("metadata"),
    integrations: jsonb("integrations"),
    error: jsonb("error"),
    fineTunedModel: text("fine_tuned_model"),
    trainedTokens: bigint("trained_tokens", { mode: "number" }),
    resultFiles: jsonb("result_files").notNull().default(sql`'[]'::jsonb`),
    estimatedFinish: timestamp("estimated_finish", { withTimezone: true, mode: "date" }),
    createdAt: createdAt(),
    finishedAt: timestamp("finished_at", { withTimezone: true, mode: "date" }),
    workerId: text("worker_id"),
    leaseExpiresAt: timestamp("lease_expires_at", { withTimezone: true, mode: "date" }),
    resumeBlobId: text("resume_blob_id").references(() => blobs.id, { onDelete: "set null" }),
    resumeStep: integer("resume_step"),
  },
  (t) => [
    index("fine_tuning_jobs_project_created_idx").on(t.projectId, t.createdAt, t.id),
    index("fine_tuning_jobs_claim_idx").on(t.status, t.createdAt),
  ],
);

/** Job events; `seq` orders them (newest first in the API, oldest first in the live stream). */
export const fineTuningJobEvents = pgTable(
  "fine_tuning_job_events",
  {
    seq: bigint("seq", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    id: text("id").notNull().unique(),
    jobId: text("job_id")
      .notNull()
      .references(() => fineTuningJobs.id, { onDelete: "cascade" }),
    level: text("level").notNull(),
    message: text("message").notNull(),
    type: text("type").notNull(),
    data: jsonb("data"),
    createdAt: createdAt(),
  },
  (t) => [index("fine_tuning_job_events_job_seq_idx").on(t.jobId, t.seq)],
);

/** End-of-epoch checkpoints: metrics and the adapter archive (tar) of that step. */
export const fineTuningCheckpoints = pgTable(
  "fine_tuning_checkpoints",
  {
    id: text("id").primaryKey(),
    jobId: text("job_id")
      .notNull()
      .references(() => fineTuningJobs.id, { onDelete: "cascade" }),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    stepNumber: integer("step_number").notNull(),
    /** ft:…:ckpt-step-N */
    modelName: text("model_name").notNull(),
    metrics: jsonb("metrics").notNull(),
    adapterBlobId: text("adapter_blob_id").references(() => blobs.id, { onDelete: "set null" }),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("fine_tuning_checkpoints_job_step_idx").on(t.jobId, t.stepNumber),
    index("fine_tuning_checkpoints_model_idx").on(t.projectId, t.modelName),
  ],
);

/** Tuned models (ft:{base}:{project}:{suffix}:{job}), served as base model + adapter. */
export const fineTunedModels = pgTable(
  "fine_tuned_models",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    jobId: text("job_id").notNull(),
    baseModel: text("base_model").notNull(),
    /** the tuned model this one was trained from (its job's `model`); null when trained from the base */
    parentModel: text("parent_model"),
    adapterBlobId: text("adapter_blob_id")
      .notNull()
      .references(() => blobs.id),
    createdAt: createdAt(),
  },
  (t) => [index("fine_tuned_models_project_idx").on(t.projectId, t.createdAt)],
);
