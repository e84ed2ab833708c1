// GET /v1/fine_tuning/jobs/{id}/adapter and /merged (extensions): the job's fine-tuned model as
// its adapter archive, or merged into the base model's weights (a standalone model folder).
import { and, eq } from "drizzle-orm";
import type { FastifyPluginAsync } from "fastify";
import { mergedModelArchive } from "../../serving/merged-model.js";
import type { Database } from "../../store/db/client.js";
import { blobs, fineTunedModels } from "../../store/db/schema.js";
import type { JobRow } from "../../store/jobs/job-objects.js";
import { jobOr404 } from "../../store/jobs/job-repository.js";
import { ApiError } from "../api-error.js";
import type { AppContext } from "../app-context.js";
import { attachmentDisposition } from "../content-disposition.js";
import { operationSchema } from "../openapi-document.js";
import type { OperationRoute } from "../operation-route.js";
import { sendAdapter } from "./adapter-download.js";

function noModel(job: JobRow): ApiError {
  return new ApiError(
    404,
    `Job ${job.id} has no fine-tuned model (status '${job.status}', or the model was deleted).`,
    { param: "fine_tuning_job_id", code: "model_not_found" },
  );
}

/** The fine-tuned model of the caller's job `jobId`, or a 404 naming the job. */
async function jobModel(db: Database, projectId: string, jobId: string) {
  const job = await jobOr404(db, projectId, jobId);
  const [model] = job.fineTunedModel
    ? await db
        .select({
          id: fineTunedModels.id,
          blobId: fineTunedModels.adapterBlobId,
          baseModel: fineTunedModels.baseModel,
          bytes: blobs.bytes,
        })
        .from(fineTunedModels)
        .innerJoin(blobs, eq(blobs.id, fineTunedModels.adapterBlobId))
        .where(and(eq(fineTunedModels.id, job.fineTunedModel), eq(fineTunedModels.projectId, projectId)))
    : [];
  if (!model) throw noModel(job);
  return model;
}

export const modelDownloads: FastifyPluginAsync<AppContext> = async (app, ctx) => {
  const { db } = ctx.database;
  app.get<OperationRoute<"downloadFineTunedAdapter">>(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/adapter",
    { schema: operationSchema("downloadFineTunedAdapter") },
    async (request, reply) => {
      const model = await jobModel(db, request.projectId, request.params.fine_tuning_job_id);
      return sendAdapter(ctx, reply, model.blobId, model.bytes, model.id);
    },
  );

  app.get<OperationRoute<"downloadMergedModel">>(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/merged",
    { schema: operationSchema("downloadMergedModel") },
    async (request, reply) => {
      const model = await jobModel(db, request.projectId, request.params.fine_tuning_job_id);
      const archive = await mergedModelArchive(ctx, model.baseModel, model.blobId);
      return reply
        .header("content-type", "application/x-tar")
        .header("content-length", String(archive.length))
        .header(
          "content-disposition",
          attachmentDisposition(`${model.id.replace(/[^A-Za-z0-9._-]/g, "_")}-merged.tar`),
        )
        .send(Buffer.from(archive.buffer, archive.byteOffset, archive.byteLength));
    },
  );
};
