ALTER TABLE "fine_tuned_models" ADD COLUMN "parent_model" text;--> statement-breakpoint
ALTER TABLE "fine_tuning_jobs" ADD COLUMN "base_model" text;