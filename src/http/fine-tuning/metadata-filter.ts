// GET /v1/fine_tuning/jobs?metadata[k]=v: the filter is checked like the metadata a job may
// carry (at most 16 pairs, keys up to 64 characters, values up to 512), each problem a 400.
import { badRequest } from "../api-error.js";

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** undefined: no filter; null: jobs without metadata; else the pairs every job must have. */
export function checkMetadataFilter(raw: unknown): Record<string, string> | null | undefined {
  if (raw === undefined) return undefined;
  if (raw === "null") return null;
  if (!isPlainObject(raw))
    throw badRequest("'metadata' must be an object of string values.", "metadata", "invalid_type");
  const entries = Object.entries(raw);
  if (entries.length > 16)
    throw badRequest("'metadata' may hold at most 16 pairs.", "metadata", "invalid_value");
  for (const [k, v] of entries) {
    if (k.length > 64)
      throw badRequest(
        `metadata key '${k.slice(0, 20)}…' is longer than 64 characters.`,
        "metadata",
        "invalid_value",
      );
    if (typeof v !== "string")
      throw badRequest(`metadata['${k}'] must be a string.`, `metadata.${k}`, "invalid_type");
    if (v.length > 512)
      throw badRequest(`metadata['${k}'] is longer than 512 characters.`, `metadata.${k}`, "invalid_value");
  }
  return raw as Record<string, string>;
}
