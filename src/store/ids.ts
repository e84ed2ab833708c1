// Resource ids: a type prefix (as OpenAI's: file-…, upload_…, part_…) and 24 random
// alphanumeric characters (~143 bits), URL-safe without encoding.
import { randomBytes } from "node:crypto";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export function randomAlphanumeric(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 × 62: rejecting the top bytes keeps every character equally likely
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

export type IdPrefix = "file-" | "upload_" | "part_" | "blob_" | "proj_" | "key_";

export function newId(prefix: IdPrefix): string {
  return prefix + randomAlphanumeric(24);
}
