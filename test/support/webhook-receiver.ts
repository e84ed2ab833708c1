// A real HTTP receiver on loopback for webhook tests: records every request (headers and the
// exact body) and answers with what `respond` says (default 200), so a test can make it fail,
// redirect or stall.
import http from "node:http";

export interface ReceivedRequest {
  headers: Record<string, string>;
  body: string;
  at: number;
}

export interface Answer {
  status: number;
  body?: string;
  headers?: Record<string, string>;
  /** wait this long before answering */
  delayMs?: number;
  /** send the status and the first part of the body at once, the end only after this long */
  stallBodyMs?: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedRequest[];
  respond: (req: ReceivedRequest, index: number) => Answer;
  /** resolves once `n` requests have arrived */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export async function startReceiver(path = "/hook"): Promise<WebhookReceiver> {
  const received: ReceivedRequest[] = [];
  const waiters: (() => void)[] = [];
  const receiver: WebhookReceiver = {
    url: "",
    received,
    respond: () => ({ status: 200, body: "ok" }),
    async waitFor(n, timeoutMs = 30_000) {
      const t0 = Date.now();
      while (received.length < n) {
        if (Date.now() - t0 > timeoutMs)
          throw new Error(`receiver: ${received.length} of ${n} requests after ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
      return received.slice(0, n);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      const entry = { headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now() };
      received.push(entry);
      for (const w of waiters.splice(0)) w();
      const answer = receiver.respond(entry, received.length - 1);
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(answer.status, answer.headers ?? { "content-type": "text/plain" });
        if (answer.stallBodyMs) {
          res.write(answer.body ?? "");
          setTimeout(() => res.end(), answer.stallBodyMs);
        } else res.end(answer.body ?? "");
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  receiver.url = `http://127.0.0.1:${address.port}${path}`;
  return receiver;
}
