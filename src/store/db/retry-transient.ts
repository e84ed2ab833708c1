// Waits out a database outage: runs `attempt` until it succeeds, sleeping with exponential
// backoff (and jitter, so many processes do not reconnect in step) after each transient
// failure. Final errors, and transient ones once `giveUp()` says so, are thrown.

import { isTransientDatabaseError } from "./transient-error.js";

export interface RetryOptions {
  /** first delay; doubles after every failure up to maxDelayMs */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** checked after each failure: true stops retrying and rethrows the last error */
  giveUp?: () => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/** Delay before retry number `attempt` (1-based): initial · 2^(attempt-1), capped, ±25% jitter. */
export function backoffDelay(attempt: number, initialDelayMs = 200, maxDelayMs = 5_000): number {
  const base = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

export async function retryTransient<T>(attempt: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isTransientDatabaseError(err) || opts.giveUp?.()) throw err;
      const delay = backoffDelay(n, opts.initialDelayMs, opts.maxDelayMs);
      opts.onRetry?.(err, n, delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
