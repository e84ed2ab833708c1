// One HTTP attempt: POST the body with its signed headers, wait at most `timeoutMs` for the
// whole answer, keep only the first `excerptBytes` of it, and never follow a redirect (a 3xx
// is a failed attempt like any non-2xx). node:http is used rather than fetch so that the
// socket connects to the address the URL policy checked (see webhook-url-policy.ts).
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import type { AttemptResult } from "../../src/store/webhooks/delivery-queue.js";
import { isNonPublicAddress, policyLookup } from "../../src/store/webhooks/webhook-url-policy.js";

export interface PostWebhookInput {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  allowPrivate: boolean;
  excerptBytes: number;
}

export type { AttemptResult };

function describeError(err: NodeJS.ErrnoException): string {
  if (err.code === "EWEBHOOKBLOCKED") return `blocked: ${err.message}`;
  if (err.code) return `${err.code}: ${err.message}`.slice(0, 300);
  return err.message.slice(0, 300);
}

export function postWebhook(input: PostWebhookInput): Promise<AttemptResult> {
  const started = Date.now();
  const elapsed = () => Date.now() - started;
  return new Promise((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (r: Omit<AttemptResult, "durationMs" | "ok">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const ok = r.error === null && r.statusCode !== null && r.statusCode >= 200 && r.statusCode < 300;
      resolve({ ...r, durationMs: elapsed(), ok });
    };
    let url: URL;
    try {
      url = new URL(input.url);
    } catch {
      return finish({ statusCode: null, error: "invalid URL", responseExcerpt: null });
    }
    const host = url.hostname.replace(/^\[|\]$/g, "");
    if (!input.allowPrivate && isIP(host) !== 0 && isNonPublicAddress(host)) {
      return finish({
        statusCode: null,
        error: `blocked: ${host} is a non-public address`,
        responseExcerpt: null,
      });
    }
    const body = Buffer.from(input.body, "utf8");
    const client = url.protocol === "https:" ? https : http;
    const req = client.request(url, {
      method: "POST",
      headers: { ...input.headers, "content-length": String(body.length) },
      lookup: policyLookup(input.allowPrivate),
      agent: false,
    });
    // an answer whose status came in time counts by its status, however slow the rest of it
    let answered: (() => void) | null = null;
    timer = setTimeout(() => {
      if (answered) answered();
      else finish({ statusCode: null, error: `timeout after ${input.timeoutMs} ms`, responseExcerpt: null });
      req.destroy();
    }, input.timeoutMs);
    req.on("error", (err) => finish({ statusCode: null, error: describeError(err), responseExcerpt: null }));
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      const done = () => {
        const excerpt = Buffer.concat(chunks)
          .subarray(0, input.excerptBytes)
          .toString("utf8")
          .replace(/\uFFFD+$/, "");
        const status = res.statusCode ?? null;
        const failed = status === null || status < 200 || status >= 300;
        finish({ statusCode: status, error: failed ? `HTTP ${status}` : null, responseExcerpt: excerpt });
        res.destroy();
      };
      answered = done;
      res.on("data", (chunk: Buffer) => {
        if (kept < input.excerptBytes) {
          chunks.push(chunk);
          kept += chunk.length;
        }
        // the rest of a long answer is not worth waiting for
        if (kept >= input.excerptBytes) done();
      });
      res.on("end", done);
      res.on("error", done);
    });
    req.end(body);
  });
}
