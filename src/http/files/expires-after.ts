// expires_after {anchor: "created_at", seconds: 3600..2592000}: a JSON object on /uploads,
// two form fields `expires_after[anchor]` / `expires_after[seconds]` on multipart /files.

import {
  BATCH_DEFAULT_EXPIRY_SECONDS,
  MAX_EXPIRES_AFTER_SECONDS,
  MIN_EXPIRES_AFTER_SECONDS,
} from "../../store/files/file-purposes.js";
import { badRequest } from "../api-error.js";

/** Seconds after creation when the file expires, or null (kept until deleted). */
export function expirySeconds(
  purpose: string,
  anchor: string | undefined,
  seconds: string | number | undefined,
): number | null {
  if (anchor === undefined && seconds === undefined) {
    return purpose === "batch" ? BATCH_DEFAULT_EXPIRY_SECONDS : null;
  }
  if (anchor !== "created_at") {
    throw badRequest(
      `Invalid value for 'expires_after.anchor': ${JSON.stringify(anchor ?? null)}. Supported values are: 'created_at'.`,
      "expires_after.anchor",
      "invalid_value",
    );
  }
  const n = typeof seconds === "number" ? seconds : Number(seconds);
  if (
    seconds === undefined ||
    seconds === "" ||
    !Number.isInteger(n) ||
    n < MIN_EXPIRES_AFTER_SECONDS ||
    n > MAX_EXPIRES_AFTER_SECONDS
  ) {
    throw badRequest(
      `Invalid value for 'expires_after.seconds': ${JSON.stringify(seconds ?? null)}. It must be an integer between ${MIN_EXPIRES_AFTER_SECONDS} and ${MAX_EXPIRES_AFTER_SECONDS}.`,
      "expires_after.seconds",
      "invalid_value",
    );
  }
  return n;
}
