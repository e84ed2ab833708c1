// /v1/fine_tuning/jobs: create (its body checked by the spec's CreateFineTuningJobRequest
// schema, then create-job-request.ts and create-job-checks.ts), the preflight of a body
// (extension; also `?dry_run=true`), list and retrieve. Tenancy: every lookup is scoped to the
// key's project, so another project's job is a 404.
import type { FastifyPluginAsync } from "fastify";
import type { JobRow } from "../../store/jobs/job-objects.js";
import { toJobObject } from "../../store/jobs/job-objects.js";
import { createJob, jobOr404, listJobs } from "../../store/jobs/job-repository.js";
import type { AppContext } from "../app-context.js";
import { operationSchema } from "../openapi-document.js";
import type { OperationRoute } from "../operation-route.js";
import { toListPage } from "../pagination.js";
import { strictBodyValidatorCompiler } from "../request-validator.js";
import { checkCreate } from "./create-job-checks.js";
import { createJobSchemaError } from "./create-job-errors.js";
import { type CreateJobBody, parseCreateJobRequest } from "./create-job-request.js";
import { checkMetadataFilter } from "./metadata-filter.js";
import { validateJobFiles } from "./validate-job-files.js";

/** A job body is checked whole: unknown hyperparameters are a 400, and its errors keep their codes. */
const createJobValidation = {
  validatorCompiler: strictBodyValidatorCompiler(),
  schemaErrorFormatter: createJobSchemaError,
};

export const fineTuningJobs: FastifyPluginAsync<AppContext> = async (app, ctx) => {
  const { db } = ctx.database;

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
  const preflight = (projectId: string, body: CreateJobBody & { preview_examples?: unknown }) =>
    import("./preflight.js").then((m) => m.runPreflight(ctx, projectId, body, checkCreate));
  app.post<OperationRoute<"preflightFineTuningJob">>(
    "/v1/fine_tuning/jobs/preflight",
    { schema: operationSchema("preflightFineTuningJob"), ...createJobValidation },
    async (request) => preflight(request.projectId, request.body),
  );

  app.post<OperationRoute<"createFineTuningJob">>(
    "/v1/fine_tuning/jobs",
    { schema: operationSchema("createFineTuningJob"), ...createJobValidation },
    async (request) => {
      if (request.query.dry_run === true) return preflight(request.projectId, request.body);
      const req = parseCreateJobRequest(request.body);
      const baseModel = await checkCreate(ctx, request.projectId, req);
      const job = await createJob(db, request.projectId, req, baseModel === req.model ? null : baseModel);
      validateAfterReply(job);
      return toJobObject(job);
    },
  );

  app.get<OperationRoute<"listFineTuningJobs">>(
    "/v1/fine_tuning/jobs",
    { schema: operationSchema("listFineTuningJobs") },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? 20;
      const metadata = checkMetadataFilter(q.metadata);
      const rows = await listJobs(db, request.projectId, { after: q.after, limit, metadata });
      const page = toListPage(rows.map(toJobObject), limit);
      return { object: page.object, data: page.data, has_more: page.has_more };
    },
  );

  app.get<OperationRoute<"retrieveFineTuningJob">>(
    "/v1/fine_tuning/jobs/:fine_tuning_job_id",
    { schema: operationSchema("retrieveFineTuningJob") },
    async (request) => toJobObject(await jobOr404(db, request.projectId, request.params.fine_tuning_job_id)),
  );
};
