// File purposes as OpenAI defines them: what an upload may declare, and what an object may carry.
export const UPLOAD_PURPOSES = ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"] as const;
export type UploadPurpose = (typeof UPLOAD_PURPOSES)[number];

/** Purposes the Uploads API accepts (OpenAI's CreateUploadRequest enum). */
export const UPLOADS_API_PURPOSES = [
  "assistants",
  "batch",
  "fine-tune",
  "vision",
  "user_data",
  "evals",
] as const;

export function isUploadPurpose(value: string): value is UploadPurpose {
  return (UPLOAD_PURPOSES as readonly string[]).includes(value);
}

/** OpenAI: files with purpose batch expire after 30 days unless told otherwise; others persist. */
export const BATCH_DEFAULT_EXPIRY_SECONDS = 30 * 24 * 3600;
export const MIN_EXPIRES_AFTER_SECONDS = 3600;
export const MAX_EXPIRES_AFTER_SECONDS = 30 * 24 * 3600;
