// Standard Webhooks signing, as OpenAI's SDKs verify it (`client.webhooks.unwrap`): the secret
// is `whsec_` + base64 of the key; the signature is `v1,` + base64 HMAC-SHA256 of
// "{webhook-id}.{webhook-timestamp}.{body}". The timestamp is the attempt's, so a retry is
// signed afresh (receivers refuse timestamps older than a few minutes) with the same id.
import { createHmac, randomBytes } from "node:crypto";

const PREFIX = "whsec_";

export function newWebhookSecret(): string {
  return PREFIX + randomBytes(32).toString("base64");
}

/** null when valid; else why not (for config and API messages). */
export function webhookSecretProblem(secret: string): string | null {
  if (!secret.startsWith(PREFIX)) return "must start with whsec_";
  const b64 = secret.slice(PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) return "must be whsec_ followed by base64";
  const bytes = Buffer.from(b64, "base64").length;
  if (bytes < 24 || bytes > 64) return `must encode 24 to 64 bytes (got ${bytes})`;
  return null;
}

export type SignedHeaders = {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
};

/** One `v1,…` signature per secret, space-separated (receivers accept any one that matches). */
export function signWebhook(
  secrets: string | string[],
  id: string,
  timestampSeconds: number,
  body: string,
): SignedHeaders {
  const signatures = (Array.isArray(secrets) ? secrets : [secrets]).map((secret) => {
    const key = Buffer.from(secret.slice(PREFIX.length), "base64");
    return `v1,${createHmac("sha256", key).update(`${id}.${timestampSeconds}.${body}`).digest("base64")}`;
  });
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": signatures.join(" "),
  };
}
