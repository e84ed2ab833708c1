// /v1/models: the base models under MODELS_DIR, plus the project's tuned models and
// checkpoints (src/store/models/tuned-models.ts); DELETE removes a tuned model.
import type { FastifyPluginAsync } from "fastify";
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
import type { OperationRoute } from "../operation-route.js";

function modelNotFound(id: string): ApiError {
  return new ApiError(404, `The model '${id}' does not exist or you do not have access to it.`, {
    param: "model",
    code: "model_not_found",
  });
}

export const modelRoutes: FastifyPluginAsync<AppContext> = async (app, ctx) => {
  const { db } = ctx.database;
  app.get("/v1/models", { schema: operationSchema("listModels", { response: true }) }, async (request) => ({
    object: "list" as const,
    data: [
      ...(await listBaseModels(ctx.config.modelsDir)).map(toModelObject),
      ...(await listTunedModels(db, request.projectId)).map(tunedToModelObject),
    ],
  }));

  const retrieve = async (projectId: string, id: string) => {
    if (isTunedModelId(id)) {
      const tuned = await findTunedModel(db, projectId, id);
      if (!tuned) throw modelNotFound(id);
      return tunedToModelObject(tuned);
    }
    const model = await findBaseModel(ctx.config, id);
    if (!model) throw modelNotFound(id);
    return toModelObject(model);
  };
  // The SDK sends a `/` in an id as %2F (decoded into :model); `org/name` typed raw also works.
  app.get<OperationRoute<"retrieveModel">>(
    "/v1/models/:model",
    { schema: operationSchema("retrieveModel", { response: true }) },
    async (request) => retrieve(request.projectId, request.params.model),
  );
  app.get<{ Params: { org: string; name: string } }>("/v1/models/:org/:name", async (request) => {
    const { org, name } = request.params;
    return retrieve(request.projectId, `${org}/${name}`);
  });

  // Only tuned models can be deleted (OpenAI's rule); base models and checkpoints are a 400/404.
  app.delete<OperationRoute<"deleteModel">>(
    "/v1/models/:model",
    { schema: operationSchema("deleteModel") },
    async (request) => {
      const id = request.params.model;
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
    },
  );
};
