// /v1/models: the base models under MODELS_DIR (fine-tuned models join when jobs exist).
import type { FastifyInstance } from "fastify";
import type { AppContext } from "../app-context.js";
import { ApiError } from "../http/api-error.js";
import { operationSchema } from "../http/openapi-document.js";
import { findBaseModel, listBaseModels, toModelObject } from "./base-models.js";

export function registerModelRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get("/v1/models", { schema: operationSchema("listModels") }, async () => ({
    object: "list" as const,
    data: (await listBaseModels(ctx.config.modelsDir)).map(toModelObject),
  }));

  const retrieve = async (id: string) => {
    const model = await findBaseModel(ctx.config, id);
    if (!model) {
      throw new ApiError(404, `The model '${id}' does not exist or you do not have access to it.`, {
        param: "model",
        code: "model_not_found",
      });
    }
    return toModelObject(model);
  };
  // The SDK sends a `/` in an id as %2F (decoded into :model); `org/name` typed raw also works.
  app.get("/v1/models/:model", { schema: operationSchema("retrieveModel") }, async (request) =>
    retrieve((request.params as { model: string }).model),
  );
  app.get("/v1/models/:org/:name", async (request) => {
    const { org, name } = request.params as { org: string; name: string };
    return retrieve(`${org}/${name}`);
  });
}
