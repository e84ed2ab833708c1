// PGlite shared with a worker thread. PGlite lives in one thread (it is Postgres compiled to
// WebAssembly, with one session); the embedded training worker runs in a worker thread so
// that training never blocks the api's event loop, and reaches the database through this
// small proxy over a MessagePort:
//
//   main thread:    const stop = servePgliteOnPort(pglite, worker);
//   worker thread:  const db = drizzle({ client: new PgliteOverPort(parentPort), schema });
//
// The client side offers what drizzle's PGlite driver and the worker call on a PGlite
// instance: query(sql, params, { rowMode }), transaction(fn) and listen(channel, fn). A
// transaction holds PGlite's own transaction open in the main thread until the worker ends
// it (other queries wait for it there, as they do for any PGlite transaction); if the
// worker thread dies, its open transactions are rolled back.
import type { PGlite, Transaction } from "@electric-sql/pglite";
import { types } from "@electric-sql/pglite";

/** A worker_threads Worker (main side) or parentPort (thread side). */
interface Port {
  postMessage(message: unknown): void;
  on(event: "message", listener: (message: any) => void): unknown;
  off(event: "message", listener: (message: any) => void): unknown;
}

type Request =
  | { t: "query"; id: number; sql: string; params: unknown[]; rowMode: "array" | "object"; tx: number | null }
  | { t: "begin"; id: number }
  | { t: "end"; id: number; tx: number; commit: boolean }
  | { t: "listen"; id: number; channel: string }
  | { t: "unlisten"; id: number; channel: string };

type Reply =
  | { t: "reply"; id: number; ok: true; value: unknown }
  | { t: "reply"; id: number; ok: false; error: Record<string, unknown> }
  | { t: "notify"; channel: string; payload: string };

// drizzle's PGlite driver leaves dates, intervals and numerics as text; the same parsers apply
// in the main thread (functions cannot cross the port).
const IDENTITY = (value: string) => value;
const DRIZZLE_PARSERS = Object.fromEntries(
  [types.TIMESTAMP, types.TIMESTAMPTZ, types.INTERVAL, types.DATE, 1231, 1115, 1185, 1187, 1182].map(
    (oid) => [oid, IDENTITY],
  ),
);

function errorFields(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  for (const [k, v] of Object.entries(err)) if (typeof v !== "function" && typeof v !== "object") out[k] = v;
  return out;
}

const ROLLBACK = Symbol("rollback");

/** Main thread: answers the worker's requests on `port` with `pglite`; returns a stop function. */
export function servePgliteOnPort(pglite: PGlite, port: Port): () => Promise<void> {
  const transactions = new Map<
    number,
    { tx: Transaction; end: (commit: boolean) => void; done: Promise<unknown> }
  >();
  const listeners = new Map<string, () => Promise<void>>();
  let nextTx = 1;
  const reply = (id: number, result: Promise<unknown>) => {
    result.then(
      (value) => port.postMessage({ t: "reply", id, ok: true, value } satisfies Reply),
      (err) => port.postMessage({ t: "reply", id, ok: false, error: errorFields(err) } satisfies Reply),
    );
  };
  const begin = (): Promise<number> =>
    new Promise((opened, failed) => {
      const txId = nextTx++;
      let end!: (commit: boolean) => void;
      const ended = new Promise<boolean>((resolve) => {
        end = resolve;
      });
      const done = pglite
        .transaction(async (tx) => {
          transactions.set(txId, { tx, end, done });
          opened(txId);
          if (!(await ended)) throw ROLLBACK;
        })
        .finally(() => transactions.delete(txId));
      done.catch((err) => {
        if (err !== ROLLBACK) failed(err);
      });
    });
  const onMessage = (message: Request) => {
    switch (message.t) {
      case "query": {
        const target = message.tx === null ? pglite : transactions.get(message.tx)?.tx;
        if (!target) {
          reply(message.id, Promise.reject(new Error(`transaction ${message.tx} is not open`)));
          return;
        }
        reply(
          message.id,
          target.query(message.sql, message.params, { rowMode: message.rowMode, parsers: DRIZZLE_PARSERS }),
        );
        return;
      }
      case "begin":
        reply(message.id, begin());
        return;
      case "end": {
        const open = transactions.get(message.tx);
        if (!open) {
          reply(message.id, Promise.reject(new Error(`transaction ${message.tx} is not open`)));
          return;
        }
        open.end(message.commit);
        reply(
          message.id,
          open.done.then(
            () => null,
            (err) => {
              if (err !== ROLLBACK) throw err;
              return null;
            },
          ),
        );
        return;
      }
      case "listen":
        reply(
          message.id,
          listeners.has(message.channel)
            ? Promise.resolve(null)
            : pglite
                .listen(message.channel, (payload) =>
                  port.postMessage({ t: "notify", channel: message.channel, payload } satisfies Reply),
                )
                .then((unlisten) => {
                  listeners.set(message.channel, unlisten);
                  return null;
                }),
        );
        return;
      case "unlisten": {
        const unlisten = listeners.get(message.channel);
        listeners.delete(message.channel);
        reply(message.id, unlisten ? unlisten().then(() => null) : Promise.resolve(null));
        return;
      }
    }
  };
  port.on("message", onMessage);
  return async () => {
    port.off("message", onMessage);
    // a worker that went away mid-transaction: roll its transactions back
    for (const open of transactions.values()) open.end(false);
    await Promise.allSettled([...transactions.values()].map((t) => t.done));
    for (const unlisten of listeners.values()) await unlisten().catch(() => {});
    listeners.clear();
  };
}

type QueryResult = { rows: unknown[]; affectedRows?: number; fields: { name: string; dataTypeID: number }[] };

/** Worker thread: the PGlite-shaped client that drizzle and the worker use. */
export class PgliteOverPort {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly channels = new Map<string, Set<(payload: string) => void>>();

  constructor(private readonly port: Port) {
    port.on("message", (message: Reply) => {
      if (message.t === "notify") {
        for (const cb of this.channels.get(message.channel) ?? []) cb(message.payload);
        return;
      }
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      if (message.ok) waiting.resolve(message.value);
      else waiting.reject(Object.assign(new Error(String(message.error.message)), message.error));
    });
  }

  private call<T>(request: Omit<Request, "id"> & { t: Request["t"] }): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.port.postMessage({ ...request, id });
    });
  }

  private queryIn(
    tx: number | null,
    sql: string,
    params: unknown[] = [],
    options?: { rowMode?: "array" | "object" },
  ) {
    return this.call<QueryResult>({
      t: "query",
      sql,
      params,
      rowMode: options?.rowMode ?? "object",
      tx,
    } as Omit<Request, "id">);
  }

  query(sql: string, params?: unknown[], options?: { rowMode?: "array" | "object" }): Promise<QueryResult> {
    return this.queryIn(null, sql, params, options);
  }

  async transaction<T>(fn: (tx: { query: PgliteOverPort["query"] }) => Promise<T>): Promise<T> {
    const tx = await this.call<number>({ t: "begin" } as Omit<Request, "id">);
    let result: T;
    try {
      result = await fn({ query: (sql, params, options) => this.queryIn(tx, sql, params, options) });
    } catch (err) {
      await this.call({ t: "end", tx, commit: false } as Omit<Request, "id">).catch(() => {});
      throw err;
    }
    await this.call({ t: "end", tx, commit: true } as Omit<Request, "id">);
    return result;
  }

  async listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>> {
    let set = this.channels.get(channel);
    if (!set) {
      set = new Set();
      this.channels.set(channel, set);
      await this.call({ t: "listen", channel } as Omit<Request, "id">);
    }
    set.add(callback);
    return async () => {
      set.delete(callback);
      if (set.size === 0 && this.channels.get(channel) === set) {
        this.channels.delete(channel);
        await this.call({ t: "unlisten", channel } as Omit<Request, "id">);
      }
    };
  }
}
