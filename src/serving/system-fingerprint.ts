// `system_fingerprint` of chat and text completions: identifies the serving configuration that
// produced an answer (decoding code, base model, tuned weights), so a client comparing seeded
// answers can tell when a difference comes from a change on the server. OpenAI types it as a
// string; it is `fp_` and 10 hex digits of a hash of the three.

import { createHash } from "node:crypto";

/** Bump when a change to decoding can change the tokens chosen for the same request and seed. */
export const DECODING_VERSION = "decoding-2";

export function systemFingerprint(baseModelId: string, tunedKey: string | null): string {
  const hash = createHash("sha256")
    .update(`${DECODING_VERSION}\u0000${baseModelId}\u0000${tunedKey ?? ""}`)
    .digest("hex");
  return `fp_${hash.slice(0, 10)}`;
}
