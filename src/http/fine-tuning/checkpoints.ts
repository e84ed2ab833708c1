// GET /v1/fine_tuning/jobs/{id}/checkpoints, and (extension) a checkpoint's adapter as a tar.
import { and, eq } from "drizzle-orm";
import type { FastifyPluginAsync } from "fastify";
import { blobs, fineTuningCheckpoints } from "../../store/db/schema.js";
import { toCheckpointObject } from "../../store/jobs/job-objects.js";
import { jobOr404, listCheckpoints } from "../../store/jobs/job-repository.js";
import { notFound } from "../api-error.js";
import type { AppContext } from "../app-context.js";
import { operationSchema } from "../openapi-document.js";
import type { OperationRoute } from "../operation-route.js";
import { toListPage } from "../pagination.js";
import { sendAdapter } from "./adapter-download.js";

export const checkpointRoutes: FastifyPluginAsync<AppContext> = async (app, ctx) => {
  const { db } = ctx.database;
  app.get<OperationRoute<"listFineTuningJobCheckpoints">>(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/checkpoints",
    { schema: operationSchema("listFineTuningJobCheckpoints") },
    async (request) => {
      const job = await jobOr404(db, request.projectId, request.params.fine_tuning_job_id);
      const q = request.query;
      const limit = q.limit ?? 10;
      return toListPage(
        (await listCheckpoints(db, job.id, { after: q.after, limit })).map(toCheckpointObject),
        limit,
      );
    },
  );

  app.get<OperationRoute<"downloadCheckpointAdapter">>(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/checkpoints/:checkpoint_id/adapter",
    { schema: operationSchema("downloadCheckpointAdapter") },
    async (request, reply) => {
      const job = await jobOr404(db, request.projectId, request.params.fine_tuning_job_id);
      const { checkpoint_id } = request.params;
      const [ckpt] = await db
        .select({ blobId: blobs.id, bytes: blobs.bytes, name: fineTuningCheckpoints.modelName })
        .from(fineTuningCheckpoints)
        .innerJoin(blobs, eq(blobs.id, fineTuningCheckpoints.adapterBlobId))
        .where(and(eq(fineTuningCheckpoints.id, checkpoint_id), eq(fineTuningCheckpoints.jobId, job.id)));
      if (!ckpt) throw notFound("checkpoint", checkpoint_id, "checkpoint_id");
      return sendAdapter(ctx, reply, ckpt.blobId, ckpt.bytes, ckpt.name);
    },
  );
};
