// Job events: written by the api (created, cancelled, paused…) and the worker (progress,
// metrics, checkpoints), read newest first by the list endpoint and oldest first by the live
// stream. `seq` (an identity column) is the order; ids are the cursors the clients see.
import { and, asc, desc, eq, gt, lt, sql } from "drizzle-orm";
import type { Queryable } from "../blobs/blob-store.js";
import { fineTuningJobEvents } from "../db/schema.js";
import { invalidRequest } from "../domain-error.js";
import { newEventId } from "./job-ids.js";
import type { EventRow } from "./job-objects.js";

export interface NewEvent {
  level?: "info" | "warn" | "error";
  message: string;
  type?: "message" | "metrics";
  data?: Record<string, unknown> | null;
  /** set by a writer that may retry the insert (an id already stored is skipped) */
  id?: string;
}

export async function addEvents(q: Queryable, jobId: string, events: NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  await q
    .insert(fineTuningJobEvents)
    .values(
      events.map((e) => ({
        id: e.id ?? newEventId(),
        jobId,
        level: e.level ?? "info",
        message: e.message,
        type: e.type ?? "message",
        data: e.data ?? null,
      })),
    )
    .onConflictDoNothing({ target: fineTuningJobEvents.id });
}

export const addEvent = (q: Queryable, jobId: string, event: NewEvent): Promise<void> =>
  addEvents(q, jobId, [event]);

async function seqOf(q: Queryable, jobId: string, eventId: string): Promise<number | null> {
  const [row] = await q
    .select({ seq: fineTuningJobEvents.seq })
    .from(fineTuningJobEvents)
    .where(and(eq(fineTuningJobEvents.jobId, jobId), eq(fineTuningJobEvents.id, eventId)));
  return row?.seq ?? null;
}

/** Newest first; up to limit + 1 rows (the extra one says has_more). */
export async function listEvents(
  q: Queryable,
  jobId: string,
  opts: { after?: string; limit: number },
): Promise<EventRow[]> {
  const conditions = [eq(fineTuningJobEvents.jobId, jobId)];
  if (opts.after !== undefined) {
    const seq = await seqOf(q, jobId, opts.after);
    if (seq === null) throw invalidRequest(`No such event: ${opts.after} (the 'after' cursor)`, "after");
    conditions.push(lt(fineTuningJobEvents.seq, seq));
  }
  return q
    .select()
    .from(fineTuningJobEvents)
    .where(and(...conditions))
    .orderBy(desc(fineTuningJobEvents.seq))
    .limit(opts.limit + 1);
}

/** Oldest first, strictly after `afterSeq` (the live stream). */
export async function eventsSince(
  q: Queryable,
  jobId: string,
  afterSeq: number,
  limit = 500,
): Promise<EventRow[]> {
  return q
    .select()
    .from(fineTuningJobEvents)
    .where(and(eq(fineTuningJobEvents.jobId, jobId), gt(fineTuningJobEvents.seq, afterSeq)))
    .orderBy(asc(fineTuningJobEvents.seq))
    .limit(limit);
}

/** The seq of a Last-Event-ID, or 0 (from the start) when it is unknown. */
export async function streamStart(
  q: Queryable,
  jobId: string,
  lastEventId: string | undefined,
): Promise<number> {
  if (!lastEventId) return 0;
  return (await seqOf(q, jobId, lastEventId)) ?? 0;
}

/** Every metrics event's data, oldest first (the result CSV; survives worker restarts). */
export async function metricsData(q: Queryable, jobId: string): Promise<Record<string, unknown>[]> {
  const rows = await q
    .select({ data: fineTuningJobEvents.data })
    .from(fineTuningJobEvents)
    .where(and(eq(fineTuningJobEvents.jobId, jobId), eq(fineTuningJobEvents.type, "metrics")))
    .orderBy(asc(fineTuningJobEvents.seq));
  return rows.map((r) => (r.data ?? {}) as Record<string, unknown>);
}

/**
 * Deletes the metrics events of steps after `step` (a resumed run trains them again, so the
 * earlier run's numbers for them are superseded); returns the deleted steps, ascending.
 */
export async function dropMetricsAfterStep(q: Queryable, jobId: string, step: number): Promise<number[]> {
  const rows = await q
    .delete(fineTuningJobEvents)
    .where(
      and(
        eq(fineTuningJobEvents.jobId, jobId),
        eq(fineTuningJobEvents.type, "metrics"),
        sql`(${fineTuningJobEvents.data}->>'step')::int > ${step}`,
      ),
    )
    .returning({ data: fineTuningJobEvents.data });
  return rows.map((r) => Number((r.data as { step?: unknown } | null)?.step)).sort((a, b) => a - b);
}
