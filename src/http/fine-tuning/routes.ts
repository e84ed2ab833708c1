// /v1/fine_tuning/jobs: create, list, retrieve, cancel, pause, resume, events (list and live
// SSE stream), checkpoints, and the adapter downloads (extension). Tenancy: every lookup is
// scoped to the key's project, so another project's job, checkpoint or adapter is a 404.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { and, eq } from "drizzle-orm";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { parseModelConfig, UnsupportedModelError } from "../../../worker/engine/hf/config.js";
import { validateJobFiles } from "../../../worker/validate-job-files.js";
import { mergedModelArchive } from "../../serving/merged-model.js";
import { readBlob } from "../../store/blobs/blob-store.js";
import { blobs, fineTunedModels, fineTuningCheckpoints } from "../../store/db/schema.js";
import { findFile } from "../../store/files/file-repository.js";
import { listEvents } from "../../store/jobs/job-events.js";
import { type JobRow, toCheckpointObject, toEventObject, toJobObject } from "../../store/jobs/job-objects.js";
import {
  cancelJob,
  createJob,
  jobOr404,
  listCheckpoints,
  listJobs,
  pauseJob,
  resumeJob,
} from "../../store/jobs/job-repository.js";
import { findParentModel } from "../../store/jobs/parent-model.js";
import { findBaseModel } from "../../store/models/base-models.js";
import { ApiError, badRequest, notFound } from "../api-error.js";
import type { AppContext } from "../app-context.js";
import { attachmentDisposition } from "../content-disposition.js";
import { operationSchema } from "../openapi-document.js";
import { toListPage } from "../pagination.js";
import { type CreateJobRequest, checkMetadata, parseCreateJobRequest } from "./create-job-request.js";
import { streamJobEvents } from "./event-stream.js";

/** The base model a job trains on: `id` itself, or the base of the caller's tuned model `id`. */
async function checkModel(ctx: AppContext, projectId: string, id: string): Promise<string> {
  const parent = await findParentModel(ctx.database.db, projectId, id);
  const baseId = parent?.baseModel ?? id;
  const model = await findBaseModel(ctx.config, baseId);
  if (!model) {
    throw badRequest(
      `Model '${id}' is not available for fine-tuning: it is not a model folder under MODELS_DIR (see GET /v1/models).`,
      "model",
      "model_not_found",
    );
  }
  try {
    parseModelConfig(JSON.parse(await readFile(join(model.dir, "config.json"), "utf8")));
  } catch (err) {
    const why =
      err instanceof UnsupportedModelError
        ? err.message
        : `config.json cannot be read (${(err as Error).message})`;
    throw badRequest(`Model '${id}' cannot be fine-tuned: ${why}`, "model", "unsupported_model");
  }
  if (parent?.fullFinetune) {
    throw badRequest(
      `Model '${id}' is a full fine-tune; fine-tuning it again is not supported yet (a LoRA-tuned model can be).`,
      "model",
      "unsupported_model",
    );
  }
  return baseId;
}

async function checkTrainingFile(
  ctx: AppContext,
  projectId: string,
  id: string,
  param: string,
): Promise<void> {
  const file = await findFile(ctx.database.db, projectId, id);
  if (!file) throw badRequest(`Invalid file id '${id}': no such file.`, param, "invalid_file_id");
  if (file.purpose !== "fine-tune") {
    throw badRequest(
      `File '${id}' has purpose '${file.purpose}'; fine-tuning needs a file uploaded with purpose 'fine-tune'.`,
      param,
      "invalid_file_purpose",
    );
  }
}

export async function checkCreate(
  ctx: AppContext,
  projectId: string,
  req: CreateJobRequest,
): Promise<string> {
  const baseModel = await checkModel(ctx, projectId, req.model);
  await checkTrainingFile(ctx, projectId, req.trainingFile, "training_file");
  if (req.validationFile !== null)
    await checkTrainingFile(ctx, projectId, req.validationFile, "validation_file");
  return baseModel;
}

function sendAdapter(
  ctx: AppContext,
  reply: import("fastify").FastifyReply,
  blobId: string,
  bytes: number,
  name: string,
) {
  reply
    .header("content-type", "application/x-tar")
    .header("content-length", String(bytes))
    .header("content-disposition", attachmentDisposition(`${name.replace(/[^A-Za-z0-9._-]/g, "_")}.tar`));
  return reply.send(Readable.from(readBlob(ctx.database, blobId)));
}

export function registerFineTuningRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { db } = ctx.database;
  const jobParam = (request: FastifyRequest) =>
    (request.params as { fine_tuning_job_id: string }).fine_tuning_job_id;

  // The files are validated after the answer (which says `validating_files`, as OpenAI's does);
  // close waits for the validations still running, so none outlives the database.
  const validations = new Set<Promise<unknown>>();
  app.addHook("onClose", async () => {
    await Promise.allSettled([...validations]);
  });
  const validateAfterReply = (job: JobRow) => {
    const done = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => validateJobFiles(db, job))
      .catch((err: unknown) =>
        app.log.error(
          { err, job: job.id },
          "validating the files of a new job failed; a worker will validate them",
        ),
      )
      .finally(() => validations.delete(done));
    validations.add(done);
  };

  // The preflight module (tokenizer, data pipeline) loads on the first preflight, not at start.
  const preflight = (request: FastifyRequest) =>
    import("./preflight.js").then((m) => m.runPreflight(ctx, request.projectId, request.body, checkCreate));
  app.post("/v1/fine_tuning/jobs/preflight", async (request) => preflight(request));

  app.post("/v1/fine_tuning/jobs", async (request) => {
    const dryRun = (request.query as { dry_run?: unknown } | undefined)?.dry_run;
    if (dryRun === "true" || dryRun === true) return preflight(request);
    if (dryRun !== undefined && dryRun !== "false" && dryRun !== false) {
      throw badRequest("'dry_run' must be true or false.", "dry_run", "invalid_value");
    }
    const req = parseCreateJobRequest(request.body);
    const baseModel = await checkCreate(ctx, request.projectId, req);
    const job = await createJob(db, request.projectId, req, baseModel === req.model ? null : baseModel);
    validateAfterReply(job);
    return toJobObject(job);
  });

  app.get("/v1/fine_tuning/jobs", { schema: operationSchema("listFineTuningJobs") }, async (request) => {
    const q = request.query as { after?: string; limit?: number; metadata?: unknown };
    const limit = q.limit ?? 20;
    const metadata =
      q.metadata === "null"
        ? null
        : q.metadata === undefined
          ? undefined
          : (checkMetadata(q.metadata) ?? undefined);
    const rows = await listJobs(db, request.projectId, { after: q.after, limit, metadata });
    const page = toListPage(rows.map(toJobObject), limit);
    return { object: page.object, data: page.data, has_more: page.has_more };
  });

  app.get(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id",
    { schema: operationSchema("retrieveFineTuningJob") },
    async (request) => toJobObject(await jobOr404(db, request.projectId, jobParam(request))),
  );
  app.post(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/cancel",
    { schema: operationSchema("cancelFineTuningJob") },
    async (request) => toJobObject(await cancelJob(db, request.projectId, jobParam(request))),
  );
  app.post(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/pause",
    { schema: operationSchema("pauseFineTuningJob") },
    async (request) => toJobObject(await pauseJob(db, request.projectId, jobParam(request))),
  );
  app.post(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/resume",
    { schema: operationSchema("resumeFineTuningJob") },
    async (request) => toJobObject(await resumeJob(db, request.projectId, jobParam(request))),
  );

  app.get(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/events",
    { schema: operationSchema("listFineTuningEvents") },
    async (request, reply) => {
      const job = await jobOr404(db, request.projectId, jobParam(request));
      const q = request.query as { after?: string; limit?: number; stream?: boolean };
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

  app.get(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/checkpoints",
    { schema: operationSchema("listFineTuningJobCheckpoints") },
    async (request) => {
      const job = await jobOr404(db, request.projectId, jobParam(request));
      const q = request.query as { after?: string; limit?: number };
      const limit = q.limit ?? 10;
      return toListPage(
        (await listCheckpoints(db, job.id, { after: q.after, limit })).map(toCheckpointObject),
        limit,
      );
    },
  );

  app.get(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/adapter",
    { schema: operationSchema("downloadFineTunedAdapter") },
    async (request, reply) => {
      const job = await jobOr404(db, request.projectId, jobParam(request));
      const [model] = job.fineTunedModel
        ? await db
            .select({ blobId: fineTunedModels.adapterBlobId, bytes: blobs.bytes })
            .from(fineTunedModels)
            .innerJoin(blobs, eq(blobs.id, fineTunedModels.adapterBlobId))
            .where(
              and(
                eq(fineTunedModels.id, job.fineTunedModel),
                eq(fineTunedModels.projectId, request.projectId),
              ),
            )
        : [];
      if (!model) {
        throw new ApiError(
          404,
          `Job ${job.id} has no fine-tuned model (status '${job.status}', or the model was deleted).`,
          {
            param: "fine_tuning_job_id",
            code: "model_not_found",
          },
        );
      }
      return sendAdapter(ctx, reply, model.blobId, model.bytes, job.fineTunedModel!);
    },
  );

  app.get(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/merged",
    { schema: operationSchema("downloadMergedModel") },
    async (request, reply) => {
      const job = await jobOr404(db, request.projectId, jobParam(request));
      const [model] = job.fineTunedModel
        ? await db
            .select({ blobId: fineTunedModels.adapterBlobId, baseModel: fineTunedModels.baseModel })
            .from(fineTunedModels)
            .where(
              and(
                eq(fineTunedModels.id, job.fineTunedModel),
                eq(fineTunedModels.projectId, request.projectId),
              ),
            )
        : [];
      if (!model) {
        throw new ApiError(
          404,
          `Job ${job.id} has no fine-tuned model (status '${job.status}', or the model was deleted).`,
          {
            param: "fine_tuning_job_id",
            code: "model_not_found",
          },
        );
      }
      const archive = await mergedModelArchive(ctx, model.baseModel, model.blobId);
      return reply
        .header("content-type", "application/x-tar")
        .header("content-length", String(archive.length))
        .header(
          "content-disposition",
          attachmentDisposition(`${job.fineTunedModel!.replace(/[^A-Za-z0-9._-]/g, "_")}-merged.tar`),
        )
        .send(Buffer.from(archive.buffer, archive.byteOffset, archive.byteLength));
    },
  );

  app.get(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id/checkpoints/:checkpoint_id/adapter",
    { schema: operationSchema("downloadCheckpointAdapter") },
    async (request, reply) => {
      const job = await jobOr404(db, request.projectId, jobParam(request));
      const { checkpoint_id } = request.params as { checkpoint_id: string };
      const [ckpt] = await db
        .select({ blobId: blobs.id, bytes: blobs.bytes, name: fineTuningCheckpoints.modelName })
        .from(fineTuningCheckpoints)
        .innerJoin(blobs, eq(blobs.id, fineTuningCheckpoints.adapterBlobId))
        .where(and(eq(fineTuningCheckpoints.id, checkpoint_id), eq(fineTuningCheckpoints.jobId, job.id)));
      if (!ckpt) throw notFound("checkpoint", checkpoint_id, "checkpoint_id");
      return sendAdapter(ctx, reply, ckpt.blobId, ckpt.bytes, ckpt.name);
    },
  );
}
