// /v1/webhook_endpoints: create, list, retrieve, update, delete, rotate_secret, test, and the
// delivery attempts log. Every lookup is scoped to the key's project. Bodies are validated by
// the OpenAPI schemas (event types, lengths); the URL policy is checked here.
import type { FastifyPluginAsync } from "fastify";
import type { components } from "../../contract/openapi-types.js";
import {
  createEndpoint,
  deleteEndpoint,
  type EndpointFields,
  endpointOr404,
  listAttempts,
  listEndpoints,
  rotateSecret,
  updateEndpoint,
} from "../../store/webhooks/endpoint-repository.js";
import {
  toAttemptObject,
  toEndpointObject,
  toEndpointWithSecret,
} from "../../store/webhooks/webhook-objects.js";
import { enqueueTestEvent } from "../../store/webhooks/webhook-outbox.js";
import { webhookUrlProblem } from "../../store/webhooks/webhook-url-policy.js";
import { badRequest, notFound } from "../api-error.js";
import type { AppContext } from "../app-context.js";
import { operationSchema } from "../openapi-document.js";
import type { OperationRoute } from "../operation-route.js";
import { toListPage } from "../pagination.js";

type EndpointBody = components["schemas"]["UpdateWebhookEndpointRequest"];

export const webhookEndpointRoutes: FastifyPluginAsync<AppContext> = async (app, ctx) => {
  const { db } = ctx.database;
  const checkUrl = (url: string) => {
    const problem = webhookUrlProblem(url, ctx.config.webhookAllowPrivate);
    if (problem) throw badRequest(`Invalid 'url': ${problem}.`, "url", "invalid_url");
  };
  const fieldsOf = (body: EndpointBody): Partial<EndpointFields> => {
    const fields: Partial<EndpointFields> = {};
    if (body.url !== undefined) {
      checkUrl(body.url);
      fields.url = body.url;
    }
    if (body.events !== undefined) fields.events = body.events;
    if (body.description !== undefined) fields.description = body.description;
    return fields;
  };

  app.post<OperationRoute<"createWebhookEndpoint">>(
    "/v1/webhook_endpoints",
    { schema: operationSchema("createWebhookEndpoint") },
    async (request) => {
      const body = request.body;
      const fields = fieldsOf(body);
      const row = await createEndpoint(db, request.projectId, {
        url: body.url,
        events: fields.events ?? null,
        description: fields.description ?? null,
      });
      return toEndpointWithSecret(row);
    },
  );

  app.get<OperationRoute<"listWebhookEndpoints">>(
    "/v1/webhook_endpoints",
    { schema: operationSchema("listWebhookEndpoints") },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? 20;
      const rows = await listEndpoints(db, request.projectId, { after: q.after, limit });
      return toListPage(rows.map(toEndpointObject), limit);
    },
  );

  app.get<OperationRoute<"retrieveWebhookEndpoint">>(
    "/v1/webhook_endpoints/:webhook_endpoint_id",
    { schema: operationSchema("retrieveWebhookEndpoint") },
    async (request) =>
      toEndpointObject(await endpointOr404(db, request.projectId, request.params.webhook_endpoint_id)),
  );

  app.post<OperationRoute<"updateWebhookEndpoint">>(
    "/v1/webhook_endpoints/:webhook_endpoint_id",
    { schema: operationSchema("updateWebhookEndpoint") },
    async (request) =>
      toEndpointObject(
        await updateEndpoint(
          db,
          request.projectId,
          request.params.webhook_endpoint_id,
          fieldsOf(request.body),
        ),
      ),
  );

  app.delete<OperationRoute<"deleteWebhookEndpoint">>(
    "/v1/webhook_endpoints/:webhook_endpoint_id",
    { schema: operationSchema("deleteWebhookEndpoint") },
    async (request) => {
      const id = request.params.webhook_endpoint_id;
      await deleteEndpoint(db, request.projectId, id);
      return { id, object: "webhook_endpoint.deleted", deleted: true };
    },
  );

  app.post<OperationRoute<"rotateWebhookEndpointSecret">>(
    "/v1/webhook_endpoints/:webhook_endpoint_id/rotate_secret",
    { schema: operationSchema("rotateWebhookEndpointSecret") },
    async (request) =>
      toEndpointWithSecret(await rotateSecret(db, request.projectId, request.params.webhook_endpoint_id)),
  );

  app.post<OperationRoute<"testWebhookEndpoint">>(
    "/v1/webhook_endpoints/:webhook_endpoint_id/test",
    { schema: operationSchema("testWebhookEndpoint") },
    async (request) => {
      const id = request.params.webhook_endpoint_id;
      const event = await db.transaction((tx) => enqueueTestEvent(tx, request.projectId, id));
      if (!event) throw notFound("webhook endpoint", id, "webhook_endpoint_id");
      return event;
    },
  );

  app.get<OperationRoute<"listWebhookDeliveryAttempts">>(
    "/v1/webhook_endpoints/:webhook_endpoint_id/deliveries",
    { schema: operationSchema("listWebhookDeliveryAttempts") },
    async (request) => {
      const endpoint = await endpointOr404(db, request.projectId, request.params.webhook_endpoint_id);
      const q = request.query;
      const limit = q.limit ?? 20;
      const rows = await listAttempts(db, endpoint.id, { after: q.after, limit });
      return toListPage(rows.map(toAttemptObject), limit);
    },
  );
};
