// When a failed delivery is tried again: exponential backoff with jitter (a delay drawn between
// half and all of base × 2^(attempt−1), capped), until the event is `maxAgeMs` old (OpenAI
// retries for up to 72 hours). Jitter spreads the retries of many deliveries that failed
// together (a receiver that was down) instead of sending them all back at the same moment.

export interface RetrySchedule {
  /** the first retry comes after about this long */
  baseMs: number;
  /** no wait is longer than this */
  maxDelayMs: number;
  /** after this long since the event, a failure is final */
  maxAgeMs: number;
}

export const DEFAULT_RETRY_SCHEDULE: RetrySchedule = {
  baseMs: 5_000,
  maxDelayMs: 6 * 3600_000,
  maxAgeMs: 72 * 3600_000,
};

/** How long to wait after failed attempt number `attempt` (1-based). */
export function retryDelayMs(
  schedule: RetrySchedule,
  attempt: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(schedule.maxDelayMs, schedule.baseMs * 2 ** Math.min(attempt - 1, 40));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
