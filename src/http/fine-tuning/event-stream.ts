// GET …/events?stream=true (extension): the job's events as Server-Sent Events, oldest first,
// each with `id:` = the event id so a reconnecting client (EventSource, or anyone sending
// `Last-Event-ID`) continues after the last one it saw. New events are found by polling the
// events table every POLL_MS (the same SQL on PGlite and a server, and no connection held per
// viewer); the stream ends with `event: done` once the job is finished and drained.
import type { FastifyReply, FastifyRequest } from "fastify";
import { backoffDelay } from "../../store/db/retry-transient.js";
import { isTransientDatabaseError } from "../../store/db/transient-error.js";
import { eventsSince, streamStart } from "../../store/jobs/job-events.js";
import { TERMINAL_STATUSES, toEventObject } from "../../store/jobs/job-objects.js";
import { findJob } from "../../store/jobs/job-repository.js";
import type { AppContext } from "../app-context.js";
import { openEventStream } from "../event-stream-response.js";

const POLL_MS = 500;
/** a comment line now and then keeps proxies from closing an idle stream */
const KEEPALIVE_MS = 15_000;

export async function streamJobEvents(
  ctx: AppContext,
  request: FastifyRequest,
  reply: FastifyReply,
  jobId: string,
  lastEventId: string | undefined,
): Promise<FastifyReply> {
  const { db } = ctx.database;
  let seq = await streamStart(db, jobId, lastEventId);
  const stream = openEventStream(request, reply);
  const raw = stream.raw;
  let lastWrite = Date.now();
  let failures = 0;
  try {
    while (!stream.closed) {
      // read the status before the events: a job finished before this read has all its events in
      let job: Awaited<ReturnType<typeof findJob>>;
      let rows: Awaited<ReturnType<typeof eventsSince>>;
      try {
        job = await findJob(db, request.projectId, jobId);
        rows = await eventsSince(db, jobId, seq);
        failures = 0;
      } catch (err) {
        // a lost database connection: keep the stream open (keep-alives go on) and read again
        if (!isTransientDatabaseError(err)) throw err;
        if (failures++ === 0) request.log.warn({ err }, "event stream: database unavailable; retrying");
        if (Date.now() - lastWrite > KEEPALIVE_MS) {
          raw.write(": keep-alive\n\n");
          lastWrite = Date.now();
        }
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(failures, POLL_MS, 5_000)));
        continue;
      }
      for (const row of rows) {
        const event = toEventObject(row);
        raw.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
        seq = row.seq;
        lastWrite = Date.now();
      }
      if (rows.length > 0) continue;
      if (!job || TERMINAL_STATUSES.includes(job.status as never)) {
        raw.write(`event: done\ndata: ${JSON.stringify({ status: job?.status ?? null })}\n\n`);
        break;
      }
      if (Date.now() - lastWrite > KEEPALIVE_MS) {
        raw.write(": keep-alive\n\n");
        lastWrite = Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } catch (err) {
    request.log.error({ err }, "event stream failed");
  } finally {
    raw.end();
  }
  return reply;
}
