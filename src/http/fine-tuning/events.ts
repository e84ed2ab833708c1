// GET /v1/fine_tuning/jobs/{id}/events: a page of the job's events, newest first, or with
// `stream=true` (extension) the live Server-Sent Events stream (event-stream.ts).
import type { FastifyPluginAsync } from "fastify";
import { listEvents } from "../../store/jobs/job-events.js";
import { toEventObject } from "../../store/jobs/job-objects.js";
import { jobOr404 } from "../../store/jobs/job-repository.js";
import type { AppContext } from "../app-context.js";
import { operationSchema } from "../openapi-document.js";
import type { OperationRoute } from "../operation-route.js";
import { toListPage } from "../pagination.js";
import { streamJobEvents } from "./event-stream.js";

export const fineTuningEvents: FastifyPluginAsync<AppContext> = async (app, ctx) => {
  const { db } = ctx.database;
  app.get<OperationRoute<"listFineTuningEvents">>(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/events",
    { schema: operationSchema("listFineTuningEvents", { response: true }) },
    async (request, reply) => {
      const job = await jobOr404(db, request.projectId, request.params.fine_tuning_job_id);
      const q = request.query;
      if (q.stream) {
        const lastEventId = request.headers["last-event-id"];
        return streamJobEvents(
          ctx,
          request,
          reply,
          job.id,
          typeof lastEventId === "string" ? lastEventId : undefined,
        );
      }
      const limit = q.limit ?? 20;
      const page = toListPage(
        (await listEvents(db, job.id, { after: q.after, limit })).map(toEventObject),
        limit,
      );
      return { object: page.object, data: page.data, has_more: page.has_more };
    },
  );
};
