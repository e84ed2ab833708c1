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
    /** fine-tune files: the JsonlSummary of worker/engine/data/jsonl-validator.ts */
    validation: jsonb("validation"),
    createdAt: createdAt(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    index("files_project_created_idx").on(t.projectId, t.createdAt, t.id),
    index("files_expires_idx").on(t.expiresAt).where(sql`${t.expiresAt} IS NOT NULL`),
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
 * resume) → succeeded | failed | cancelled, each move a transition of the state machine
 * (src/store/jobs/job-transitions.ts, job-state-machine.ts). A worker owns a job while `worker_id` is set and
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

// ---------------------------------------------------------------- webhooks

/**
 * Where a project's events are delivered. `secret` (whsec_…) signs every delivery, so it is
 * kept as is; the API shows it only in the create and rotate answers. A rotated-out secret
 * keeps signing (a second signature) for a day, so receivers can switch without losing events. `events` null = every
 * event type. `source`: api (made through /v1/webhook_endpoints) | env (WEBHOOK_URLS).
 */
export const webhookEndpoints = pgTable(
  "webhook_endpoints",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    url: text("url").notNull(),
    events: jsonb("events").$type<string[] | null>(),
    description: text("description"),
    secret: text("secret").notNull(),
    /** after a rotation, deliveries are signed with this one too until it expires */
    previousSecret: text("previous_secret"),
    previousSecretExpiresAt: timestamp("previous_secret_expires_at", { withTimezone: true, mode: "date" }),
    source: text("source").notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("webhook_endpoints_project_created_idx").on(t.projectId, t.createdAt, t.id)],
);

/**
 * The outbox: one row per event, written in the transaction that made it true (a job's final
 * status…). `payload` is the exact JSON body every attempt sends and signs.
 */
export const webhookEvents = pgTable("webhook_events", {
  id: text("id").primaryKey(),
  projectId: text("project_id")
    .notNull()
    .references(() => projects.id, { onDelete: "cascade" }),
  type: text("type").notNull(),
  payload: text("payload").notNull(),
  createdAt: createdAt(),
});

/**
 * One event to one endpoint: `pending` until a 2xx (`delivered`) or until retries run out
 * (`failed`). A dispatcher owns it while `lease_expires_at` is in the future (FOR UPDATE SKIP
 * LOCKED + lease, as job claims), so a dispatcher that dies mid-delivery only delays it.
 */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: text("id").primaryKey(),
    eventId: text("event_id")
      .notNull()
      .references(() => webhookEvents.id, { onDelete: "cascade" }),
    endpointId: text("endpoint_id")
      .notNull()
      .references(() => webhookEndpoints.id, { onDelete: "cascade" }),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    status: text("status").notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    claimedBy: text("claimed_by"),
    leaseExpiresAt: timestamp("lease_expires_at", { withTimezone: true, mode: "date" }),
    createdAt: createdAt(),
    finishedAt: timestamp("finished_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    index("webhook_deliveries_due_idx").on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
    index("webhook_deliveries_endpoint_idx").on(t.endpointId),
  ],
);

/** Every HTTP attempt of a delivery, listed per endpoint (newest first). */
export const webhookDeliveryAttempts = pgTable(
  "webhook_delivery_attempts",
  {
    seq: bigint("seq", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    id: text("id").notNull().unique(),
    deliveryId: text("delivery_id")
      .notNull()
      .references(() => webhookDeliveries.id, { onDelete: "cascade" }),
    endpointId: text("endpoint_id")
      .notNull()
      .references(() => webhookEndpoints.id, { onDelete: "cascade" }),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    eventId: text("event_id").notNull(),
    eventType: text("event_type").notNull(),
    attempt: integer("attempt").notNull(),
    /** the receiver's HTTP status; null when none came (timeout, refused, blocked address) */
    statusCode: integer("status_code"),
    /** why it failed without a status (or with a non-2xx one) */
    error: text("error"),
    durationMs: integer("duration_ms").notNull(),
    /** the first bytes of the receiver's answer, never more */
    responseExcerpt: text("response_excerpt"),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true, mode: "date" }),
    createdAt: createdAt(),
  },
  (t) => [index("webhook_delivery_attempts_endpoint_seq_idx").on(t.endpointId, t.seq)],
);
