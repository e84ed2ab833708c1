CREATE TABLE "fine_tuned_models" (
	"id" text PRIMARY KEY NOT NULL,
	"project_id" text NOT NULL,
	"job_id" text NOT NULL,
	"base_model" text NOT NULL,
	"adapter_blob_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "fine_tuning_checkpoints" (
	"id" text PRIMARY KEY NOT NULL,
	"job_id" text NOT NULL,
	"project_id" text NOT NULL,
	"step_number" integer NOT NULL,
	"model_name" text NOT NULL,
	"metrics" jsonb NOT NULL,
	"adapter_blob_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "fine_tuning_job_events" (
	"seq" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "fine_tuning_job_events_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"id" text NOT NULL,
	"job_id" text NOT NULL,
	"level" text NOT NULL,
	"message" text NOT NULL,
	"type" text NOT NULL,
	"data" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "fine_tuning_job_events_id_unique" UNIQUE("id")
);
--> statement-breakpoint
CREATE TABLE "fine_tuning_jobs" (
	"id" text PRIMARY KEY NOT NULL,
	"project_id" text NOT NULL,
	"model" text NOT NULL,
	"training_file" text NOT NULL,
	"validation_file" text,
	"status" text NOT NULL,
	"method" jsonb NOT NULL,
	"suffix" text,
	"seed" integer NOT NULL,
	"metadata" jsonb,
	"integrations" jsonb,
	"error" jsonb,
	"fine_tuned_model" text,
	"trained_tokens" bigint,
	"result_files" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"estimated_finish" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	"worker_id" text,
	"lease_expires_at" timestamp with time zone,
	"resume_blob_id" text,
	"resume_step" integer
);
--> statement-breakpoint
ALTER TABLE "fine_tuned_models" ADD CONSTRAINT "fine_tuned_models_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "fine_tuned_models" ADD CONSTRAINT "fine_tuned_models_adapter_blob_id_blobs_id_fk" FOREIGN KEY ("adapter_blob_id") REFERENCES "public"."blobs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "fine_tuning_checkpoints" ADD CONSTRAINT "fine_tuning_checkpoints_job_id_fine_tuning_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."fine_tuning_jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "fine_tuning_checkpoints" ADD CONSTRAINT "fine_tuning_checkpoints_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "fine_tuning_checkpoints" ADD CONSTRAINT "fine_tuning_checkpoints_adapter_blob_id_blobs_id_fk" FOREIGN KEY ("adapter_blob_id") REFERENCES "public"."blobs"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "fine_tuning_job_events" ADD CONSTRAINT "fine_tuning_job_events_job_id_fine_tuning_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."fine_tuning_jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "fine_tuning_jobs" ADD CONSTRAINT "fine_tuning_jobs_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "fine_tuning_jobs" ADD CONSTRAINT "fine_tuning_jobs_resume_blob_id_blobs_id_fk" FOREIGN KEY ("resume_blob_id") REFERENCES "public"."blobs"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "fine_tuned_models_project_idx" ON "fine_tuned_models" USING btree ("project_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "fine_tuning_checkpoints_job_step_idx" ON "fine_tuning_checkpoints" USING btree ("job_id","step_number");--> statement-breakpoint
CREATE INDEX "fine_tuning_checkpoints_model_idx" ON "fine_tuning_checkpoints" USING btree ("project_id","model_name");--> statement-breakpoint
CREATE INDEX "fine_tuning_job_events_job_seq_idx" ON "fine_tuning_job_events" USING btree ("job_id","seq");--> statement-breakpoint
CREATE INDEX "fine_tuning_jobs_project_created_idx" ON "fine_tuning_jobs" USING btree ("project_id","created_at","id");--> statement-breakpoint
CREATE INDEX "fine_tuning_jobs_claim_idx" ON "fine_tuning_jobs" USING btree ("status","created_at");