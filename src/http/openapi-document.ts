// openapi/openapi.yaml is the contract: served at GET /openapi.json, and the source of the
// request schemas Fastify validates with (params, query, JSON body) — one document is the truth.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export const OPENAPI_PATH = fileURLToPath(new URL("../../openapi/openapi.yaml", import.meta.url));

let cached: JsonObject | null = null;

export function openApiDocument(): JsonObject {
  cached ??= parse(readFileSync(OPENAPI_PATH, "utf8")) as JsonObject;
  return cached;
}

// OpenAPI-only keywords that a JSON Schema validator does not know (ajv would warn or refuse).
const OPENAPI_ONLY = new Set([
  "example",
  "discriminator",
  "xml",
  "externalDocs",
  "deprecated",
  "readOnly",
  "writeOnly",
]);
// Formats that only describe transport (ajv-formats has no checker for them).
const DESCRIPTIVE_FORMATS = new Set(["binary", "unixtime", "int64", "int32"]);

function resolveRef(doc: JsonObject, ref: string): Json {
  if (!ref.startsWith("#/")) throw new Error(`openapi.yaml: only local $refs are supported (got ${ref})`);
  let node: Json = doc;
  for (const segment of ref.slice(2).split("/")) {
    if (node === null || typeof node !== "object" || Array.isArray(node) || !(segment in node)) {
      throw new Error(`openapi.yaml: $ref ${ref} does not resolve`);
    }
    node = node[segment];
  }
  return node;
}

/** Inlines $refs and drops OpenAPI-only keywords, giving a plain JSON Schema. */
function toJsonSchema(doc: JsonObject, node: Json, seen: string[] = []): Json {
  if (Array.isArray(node)) return node.map((n) => toJsonSchema(doc, n, seen));
  if (node === null || typeof node !== "object") return node;
  if (typeof node.$ref === "string") {
    if (seen.includes(node.$ref))
      throw new Error(`openapi.yaml: recursive $ref ${node.$ref} is not supported`);
    return toJsonSchema(doc, resolveRef(doc, node.$ref), [...seen, node.$ref]);
  }
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (OPENAPI_ONLY.has(key) || key.startsWith("x-")) continue;
    if (key === "format" && typeof value === "string" && DESCRIPTIVE_FORMATS.has(value)) continue;
    // `properties` maps names to schemas: its keys are not keywords, keep them all.
    if (key === "properties" && value !== null && typeof value === "object" && !Array.isArray(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonSchema(doc, v, seen)]));
      continue;
    }
    out[key] = toJsonSchema(doc, value, seen);
  }
  return out;
}

export interface RouteSchema {
  params?: Json;
  querystring?: Json;
  body?: Json;
  response?: { 200: Json };
}

function findOperation(doc: JsonObject, operationId: string): { op: JsonObject; pathItem: JsonObject } {
  const paths = doc.paths as JsonObject;
  for (const pathItem of Object.values(paths) as JsonObject[]) {
    for (const method of ["get", "post", "put", "patch", "delete"]) {
      const op = pathItem[method] as JsonObject | undefined;
      if (op && op.operationId === operationId) return { op, pathItem };
    }
  }
  throw new Error(`openapi.yaml has no operation with operationId ${operationId}`);
}

/**
 * Fastify's `schema` for a route, built from the operation's parameters and JSON body; with
 * `response`, also its 200 JSON answer, which Fastify then serializes with fast-json-stringify:
 * faster, and only the documented properties leave (in the schema's order: use it where the
 * handler's objects already have that order and no free-form part).
 */
export function operationSchema(operationId: string, opts: { response?: boolean } = {}): RouteSchema {
  const doc = openApiDocument();
  const { op, pathItem } = findOperation(doc, operationId);
  const parameters = [...((pathItem.parameters as Json[]) ?? []), ...((op.parameters as Json[]) ?? [])].map(
    (p) => toJsonSchema(doc, p) as JsonObject,
  );
  const schema: RouteSchema = {};
  for (const location of ["path", "query"] as const) {
    const params = parameters.filter((p) => p.in === location);
    if (params.length === 0) continue;
    const object: JsonObject = {
      type: "object",
      properties: Object.fromEntries(params.map((p) => [p.name as string, p.schema])),
      required: params.filter((p) => p.required === true).map((p) => p.name as string),
    };
    if (location === "path") schema.params = object;
    else schema.querystring = object;
  }
  const json = ((op.requestBody as JsonObject | undefined)?.content as JsonObject | undefined)?.[
    "application/json"
  ] as JsonObject | undefined;
  if (json) schema.body = toJsonSchema(doc, json.schema);
  if (opts.response) schema.response = { 200: okJsonSchema(doc, op, operationId) };
  return schema;
}

function okJsonSchema(doc: JsonObject, op: JsonObject, operationId: string): Json {
  const ok = (op.responses as JsonObject | undefined)?.["200"] as JsonObject | undefined;
  const json = (ok?.content as JsonObject | undefined)?.["application/json"] as JsonObject | undefined;
  if (!json) throw new Error(`openapi.yaml: ${operationId} has no 200 application/json response`);
  return toJsonSchema(doc, json.schema);
}

/** Multipart bodies are streamed, not validated by ajv; routes read their field names from here. */
export function componentSchema(name: string): JsonObject {
  const doc = openApiDocument();
  return toJsonSchema(doc, resolveRef(doc, `#/components/schemas/${name}`)) as JsonObject;
}
