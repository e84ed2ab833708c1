// /v1/webhook_endpoints: create, list, retrieve, update, delete, rotate_secret, test, and the
// delivery attempts log. Every lookup is scoped to the key's project. Bodies are validated by
// the OpenAPI schemas (event types, lengths); the URL policy is checked here.
import type { FastifyInstance, FastifyRequest } from "fastify";
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
import { toListPage } from "../pagination.js";

interface EndpointBody {
  url?: string;
  events?: string[];
  description?: string | null;
}

export function registerWebhookRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { db } = ctx.database;
  const idParam = (request: FastifyRequest) =>
    (request.params as { webhook_endpoint_id: string }).webhook_endpoint_id;
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

  app.post("/v1/webhook_endpoints", { schema: operationSchema("createWebhookEndpoint") }, async (request) => {
    const body = request.body as EndpointBody & { url: string };
    const fields = fieldsOf(body);
    const row = await createEndpoint(db, request.projectId, {
      url: body.url,
      events: fields.events ?? null,
      description: fields.description ?? null,
    });
    return toEndpointWithSecret(row);
  });

  app.get("/v1/webhook_endpoints", { schema: operationSchema("listWebhookEndpoints") }, async (request) => {
    const q = request.query as { after?: string; limit?: number };
    const limit = q.limit ?? 20;
    const rows = await listEndpoints(db, request.projectId, { after: q.after, limit });
    return toListPage(rows.map(toEndpointObject), limit);
  });

  app.get(
    "/v1/webhook_endpoints/:webhook_endpoint_id",
    { schema: operationSchema("retrieveWebhookEndpoint") },
    async (request) => toEndpointObject(await endpointOr404(db, request.projectId, idParam(request))),
  );

  app.post(
    "/v1/webhook_endpoints/:webhook_endpoint_id",
    { schema: operationSchema("updateWebhookEndpoint") },
    async (request) =>
      toEndpointObject(
        await updateEndpoint(db, request.projectId, idParam(request), fieldsOf(request.body as EndpointBody)),
      ),
  );

  app.delete(
    "/v1/webhook_endpoints/:webhook_endpoint_id",
    { schema: operationSchema("deleteWebhookEndpoint") },
    async (request) => {
      const id = idParam(request);
      await deleteEndpoint(db, request.projectId, id);
      return { id, object: "webhook_endpoint.deleted", deleted: true };
    },
  );

  app.post(
    "/v1/webhook_endpoints/:webhook_endpoint_id/rotate_secret",
    { schema: operationSchema("rotateWebhookEndpointSecret") },
    async (request) => toEndpointWithSecret(await rotateSecret(db, request.projectId, idParam(request))),
  );

  app.post(
    "/v1/webhook_endpoints/:webhook_endpoint_id/test",
    { schema: operationSchema("testWebhookEndpoint") },
    async (request) => {
      const id = idParam(request);
      const event = await db.transaction((tx) => enqueueTestEvent(tx, request.projectId, id));
      if (!event) throw notFound("webhook endpoint", id, "webhook_endpoint_id");
      return event;
    },
  );

  app.get(
    "/v1/webhook_endpoints/:webhook_endpoint_id/deliveries",
    { schema: operationSchema("listWebhookDeliveryAttempts") },
    async (request) => {
      const endpoint = await endpointOr404(db, request.projectId, idParam(request));
      const q = request.query as { after?: string; limit?: number };
      const limit = q.limit ?? 20;
      const rows = await listAttempts(db, endpoint.id, { after: q.after, limit });
      return toListPage(rows.map(toAttemptObject), limit);
    },
  );
}
