// POST /v1/fine_tuning/jobs/{id}/cancel, /pause and /resume (pause and resume are extensions):
// each answers the job as it is after the change; a job in a state that refuses it is a 400.
import type { FastifyPluginAsync } from "fastify";
import { toJobObject } from "../../store/jobs/job-objects.js";
import { cancelJob, pauseJob, resumeJob } from "../../store/jobs/job-repository.js";
import type { AppContext } from "../app-context.js";
import { operationSchema } from "../openapi-document.js";
import type { OperationRoute } from "../operation-route.js";

export const fineTuningJobControl: FastifyPluginAsync<AppContext> = async (app, ctx) => {
  const { db } = ctx.database;
  app.post<OperationRoute<"cancelFineTuningJob">>(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/cancel",
    { schema: operationSchema("cancelFineTuningJob") },
    async (request) => toJobObject(await cancelJob(db, request.projectId, request.params.fine_tuning_job_id)),
  );
  app.post<OperationRoute<"pauseFineTuningJob">>(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/pause",
    { schema: operationSchema("pauseFineTuningJob") },
    async (request) => toJobObject(await pauseJob(db, request.projectId, request.params.fine_tuning_job_id)),
  );
  app.post<OperationRoute<"resumeFineTuningJob">>(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/resume",
    { schema: operationSchema("resumeFineTuningJob") },
    async (request) => toJobObject(await resumeJob(db, request.projectId, request.params.fine_tuning_job_id)),
  );
};
