// /v1/models: the base models under MODELS_DIR, plus the project's tuned models and
// checkpoints (src/store/models/tuned-models.ts); DELETE removes a tuned model.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { findBaseModel, listBaseModels, toModelObject } from "../../store/models/base-models.js";
import {
  deleteTunedModel,
  findTunedModel,
  isTunedModelId,
  listTunedModels,
  tunedToModelObject,
} from "../../store/models/tuned-models.js";
import { ApiError } from "../api-error.js";
import type { AppContext } from "../app-context.js";
import { operationSchema } from "../openapi-document.js";

function modelNotFound(id: string): ApiError {
  return new ApiError(404, `The model '${id}' does not exist or you do not have access to it.`, {
    param: "model",
    code: "model_not_found",
  });
}

export function registerModelRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { db } = ctx.database;
  app.get("/v1/models", { schema: operationSchema("listModels") }, async (request) => ({
    object: "list" as const,
    data: [
      ...(await listBaseModels(ctx.config.modelsDir)).map(toModelObject),
      ...(await listTunedModels(db, request.projectId)).map(tunedToModelObject),
    ],
  }));

  const retrieve = async (request: FastifyRequest, id: string) => {
    if (isTunedModelId(id)) {
      const tuned = await findTunedModel(db, request.projectId, id);
      if (!tuned) throw modelNotFound(id);
      return tunedToModelObject(tuned);
    }
    const model = await findBaseModel(ctx.config, id);
    if (!model) throw modelNotFound(id);
    return toModelObject(model);
  };
  // The SDK sends a `/` in an id as %2F (decoded into :model); `org/name` typed raw also works.
  app.get("/v1/models/:model", { schema: operationSchema("retrieveModel") }, async (request) =>
    retrieve(request, (request.params as { model: string }).model),
  );
  app.get("/v1/models/:org/:name", async (request) => {
    const { org, name } = request.params as { org: string; name: string };
    return retrieve(request, `${org}/${name}`);
  });

  // Only tuned models can be deleted (OpenAI's rule); base models and checkpoints are a 400/404.
  app.delete("/v1/models/:model", { schema: operationSchema("deleteModel") }, async (request) => {
    const id = (request.params as { model: string }).model;
    if (!isTunedModelId(id)) {
      if (await findBaseModel(ctx.config, id)) {
        throw new ApiError(400, `The model '${id}' is a base model and cannot be deleted.`, {
          param: "model",
          code: "invalid_model",
        });
      }
      throw modelNotFound(id);
    }
    if (!(await deleteTunedModel(db, request.projectId, id))) {
      if (await findTunedModel(db, request.projectId, id)) {
        throw new ApiError(400, `The model '${id}' is a checkpoint; delete its fine-tuned model instead.`, {
          param: "model",
          code: "invalid_model",
        });
      }
      throw modelNotFound(id);
    }
    return { id, object: "model" as const, deleted: true };
  });
}
