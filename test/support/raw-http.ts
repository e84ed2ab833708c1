// A raw HTTP request: the path goes on the wire exactly as given (fetch would normalize it),
// so tests can send percent-encoded, malformed or oversized request lines and headers.
import { request } from "node:http";

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export function rawRequest(
  origin: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string | undefined>; body?: string | Buffer } = {},
): Promise<RawResponse> {
  const url = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path, headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** Asserts the OpenAI error envelope: an object `error` with exactly message, type, param, code. */
export function envelopeOf(
  text: string,
): { message: string; type: string; param: string | null; code: string | null } | null {
  try {
    const body = JSON.parse(text) as { error?: Record<string, unknown> };
    const e = body?.error;
    if (!e || typeof e !== "object") return null;
    const keys = Object.keys(e).sort().join(",");
    if (keys !== "code,message,param,type") return null;
    if (typeof e.message !== "string" || typeof e.type !== "string") return null;
    return e as { message: string; type: string; param: string | null; code: string | null };
  } catch {
    return null;
  }
}
