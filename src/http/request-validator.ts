// Fastify's validator (ajv, through @fastify/ajv-compiler), with one change: JSON bodies are
// validated exactly as sent. Fastify coerces types everywhere by default, which a query string
// needs (every value there is text) but a JSON body must not have: coerced, `[1.5, 2]` became
// `["1.5", "2"]` and passed as an array of strings, and `null` passed as 0. Params and the query
// keep the coercion.
import { AjvCompiler } from "@fastify/ajv-compiler";
import type { FastifySchema, FastifySchemaCompiler } from "fastify";

type AjvOptions = NonNullable<NonNullable<Parameters<ReturnType<typeof AjvCompiler>>[1]>["customOptions"]>;

/** `body`: ajv's options for JSON bodies, beside Fastify's defaults. */
function validatorCompiler(body: AjvOptions): FastifySchemaCompiler<FastifySchema> {
  const pool = AjvCompiler();
  // verbose: errors carry their schema, so an anyOf failure can quote its description
  const exact = pool({}, { customOptions: { ...body, coerceTypes: false, verbose: true } });
  const coercing = pool({}, { customOptions: { verbose: true } });
  return ({ schema, ...route }) => {
    // the part's own schema, as ajv's plain-object type (Fastify types it as the whole route's)
    const part = { ...route, schema: { ...schema } };
    return route.httpPart === "body" ? exact(part) : coercing(part);
  };
}

/** The app's validator: Fastify's defaults (a property a closed schema does not list is dropped, defaults are filled in). */
export function requestValidatorCompiler(): FastifySchemaCompiler<FastifySchema> {
  return validatorCompiler({});
}

/**
 * A route's own validator for a body whose schema is the whole check: a property outside an
 * `additionalProperties: false` object is a 400 (Fastify's default drops it silently), and the
 * schema's `default`s stay documentation (what a job leaves out is the engine's to decide, and
 * is stored as left out). The query and params are validated as everywhere else.
 */
export function strictBodyValidatorCompiler(): FastifySchemaCompiler<FastifySchema> {
  return validatorCompiler({ removeAdditional: false, useDefaults: false });
}
