// The request types of an OpenAPI operation, for Fastify's route generics:
// `app.get<OperationRoute<"listFiles">>(…, { schema: operationSchema("listFiles") }, …)` types
// `request.params`, `request.query` and `request.body` as the schema the route validates with.
import type { operations } from "../contract/openapi-types.js";

type OperationId = keyof operations;
type Parameters<K extends OperationId> = operations[K]["parameters"];
type JsonBody<K extends OperationId> =
  NonNullable<operations[K]["requestBody"]> extends { content: { "application/json": infer B } }
    ? B
    : unknown;

export interface OperationRoute<K extends OperationId> {
  Params: NonNullable<Parameters<K>["path"]>;
  Querystring: NonNullable<Parameters<K>["query"]>;
  Body: JsonBody<K>;
}
