// Checks every request's input as a whole before any route sees it, so no route can forget:
// - text: Postgres `text`/`jsonb` cannot hold NUL (U+0000), and a lone UTF-16 surrogate has no
//   UTF-8 form, so either would fail (or be mangled) where it meets the database. Every string
//   and every object key of the path params, the query and a JSON body is checked before
//   validation, and a bad one is a 400 naming where it is. Multipart bodies are streamed past
//   these hooks: their routes ask unstorablePartText (multipart-stream.ts) of every part.
// - numbers: a numeric query parameter must be a plain decimal (ajv would coerce `0x10`, and
//   `1e309` to Infinity, and then skip minimum/maximum for it); JSON.parse also reads 1e309 as
//   Infinity. No parameter takes a non-finite number: after validation any Infinity or NaN is
//   a 400 naming the parameter.
import type { FastifyRequest } from "fastify";
import { badRequest } from "./api-error.js";
import { rootPlugin } from "./root-plugin.js";

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why `s` cannot be stored as Postgres text, or null when it can. */
export function unstorableTextReason(s: string): string | null {
  if (s.includes("\u0000")) return "must not contain NUL characters (\\u0000)";
  if (LONE_SURROGATE.test(s)) return "must not contain unpaired UTF-16 surrogates (it is not valid Unicode)";
  return null;
}

function join(path: string, key: string | number): string {
  return path === "" ? String(key) : `${path}.${key}`;
}

export interface TextProblem {
  /** where: `metadata.k`, `messages.0.content`; null for a key at the top of a body */
  param: string | null;
  message: string;
}

/** The first place in `value` holding text that cannot be stored. */
export function findUnstorableText(value: unknown, path: string): TextProblem | null {
  if (typeof value === "string") {
    const reason = unstorableTextReason(value);
    return reason === null
      ? null
      : { param: path || null, message: `Invalid value for '${path}': ${reason}.` };
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorableText(value[i], join(path, i));
      if (found) return found;
    }
    return null;
  }
  if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      const keyReason = unstorableTextReason(key);
      if (keyReason !== null) {
        const where = path === "" ? "the request" : `'${path}'`;
        return { param: path || null, message: `Invalid key in ${where}: a key ${keyReason}.` };
      }
      const found = findUnstorableText(item, join(path, key));
      if (found) return found;
    }
  }
  return null;
}

/** Throws the 400 for text that cannot be stored (multipart fields, file names). */
export function checkStorableText(value: unknown, param: string): void {
  const found = findUnstorableText(value, param);
  if (found) throw badRequest(found.message, found.param, "invalid_value");
}

/** The first non-finite number in `value`: its param. */
export function findNonFiniteNumber(value: unknown, path: string): string | null {
  if (typeof value === "number") return Number.isFinite(value) ? null : path;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNonFiniteNumber(value[i], join(path, i));
      if (found !== null) return found;
    }
    return null;
  }
  if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      const found = findNonFiniteNumber(item, join(path, key));
      if (found !== null) return found;
    }
  }
  return null;
}

const DECIMAL_INTEGER = /^-?\d+$/;
const DECIMAL_NUMBER = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;

/**
 * A numeric query parameter must be written as a plain decimal: ajv would coerce `0x10`, ` 5`
 * and `1e2` too, and `1e309` to Infinity.
 */
function checkNumericQuery(request: FastifyRequest): void {
  const schema = request.routeOptions.schema?.querystring as
    | { properties?: Record<string, { type?: unknown }> }
    | undefined;
  const query: unknown = request.query;
  if (!schema?.properties || query === null || typeof query !== "object") return;
  for (const [name, property] of Object.entries(schema.properties)) {
    const value: unknown = Reflect.get(query, name);
    if (typeof value !== "string") continue;
    const types = [property.type].flat();
    if (types.includes("integer") && !DECIMAL_INTEGER.test(value)) {
      throw badRequest(
        `Invalid value for '${name}': expected an integer, got '${value.slice(0, 40)}'.`,
        name,
        "invalid_value",
      );
    }
    if (types.includes("number") && !types.includes("integer") && !DECIMAL_NUMBER.test(value)) {
      throw badRequest(
        `Invalid value for '${name}': expected a number, got '${value.slice(0, 40)}'.`,
        name,
        "invalid_value",
      );
    }
  }
}

function requestParts(request: FastifyRequest): unknown[] {
  return [request.params, request.query, request.body];
}

export const inputGuards = rootPlugin(async (app) => {
  app.addHook("preValidation", async (request) => {
    for (const part of requestParts(request)) checkStorableText(part, "");
    checkNumericQuery(request);
  });
  app.addHook("preHandler", async (request) => {
    for (const part of requestParts(request)) {
      const param = findNonFiniteNumber(part, "");
      if (param !== null) {
        throw badRequest(`Invalid value for '${param}': the number is out of range.`, param, "invalid_value");
      }
    }
  });
});
