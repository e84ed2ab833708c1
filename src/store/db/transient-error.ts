// Which database errors are the connection's fault rather than the statement's: the server
// went away (admin shutdown, crash, restart), the socket broke, or no connection could be
// made. Such an error says nothing about the data; the same statement can succeed once the
// server is back. Everything else (constraint violations, bad SQL, bad input) is final.
//
// drizzle wraps driver errors (DrizzleQueryError with `cause`), so the whole cause chain is
// examined.

/** SQLSTATE codes (or classes) that mean "the connection or server, not this statement". */
const TRANSIENT_SQLSTATES = new Set([
  "57P01", // admin_shutdown (pg_terminate_backend, fast shutdown)
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (starting up, in recovery)
  "57P05", // idle_session_timeout
  "53300", // too_many_connections
  "40001", // serialization_failure
  "40P01", // deadlock_detected
]);
const TRANSIENT_SQLSTATE_CLASSES = ["08"]; // connection_exception and its subclasses

const TRANSIENT_SYSCALL_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "ENOTFOUND",
]);

/** node-postgres reports a lost or unusable connection with these messages and no code. */
const TRANSIENT_MESSAGES = [
  /^Connection terminated/,
  /connection error and is not queryable/,
  /^timeout exceeded when trying to connect/,
  /^Connection terminated due to connection timeout/,
  /terminating connection due to administrator command/,
  /^Client was closed and is not queryable/,
  /^Cannot use a pool after calling end on the pool/,
];

function isTransientOne(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === "string") {
    if (TRANSIENT_SQLSTATES.has(code) || TRANSIENT_SYSCALL_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code) && TRANSIENT_SQLSTATE_CLASSES.includes(code.slice(0, 2))) return true;
  }
  if (typeof message === "string" && TRANSIENT_MESSAGES.some((m) => m.test(message))) return true;
  // several connection attempts (IPv4 and IPv6) failed at once
  if (err instanceof AggregateError) return err.errors.length > 0 && err.errors.every(isTransientOne);
  return false;
}

/** True when `err` (or an error it wraps) is a lost, refused or broken database connection. */
export function isTransientDatabaseError(err: unknown): boolean {
  const seen = new Set<unknown>();
  for (
    let e = err;
    typeof e === "object" && e !== null && !seen.has(e);
    e = (e as { cause?: unknown }).cause
  ) {
    seen.add(e);
    if (isTransientOne(e)) return true;
  }
  return false;
}
