// Fastify's validator, with one change: JSON bodies are validated exactly as sent. Fastify
// coerces types everywhere by default, which a query string needs (every value there is text)
// but a JSON body must not have: coerced, `[1.5, 2]` became `["1.5", "2"]` and passed as an
// array of strings, and `null` passed as 0. Params and the query keep the coercion.
import { AjvCompiler } from "@fastify/ajv-compiler";
import type { FastifyServerOptions } from "fastify";

type BuildValidator = NonNullable<
  NonNullable<NonNullable<FastifyServerOptions["schemaController"]>["compilersFactory"]>["buildValidator"]
>;

export function buildRequestValidator(): BuildValidator {
  const pool = AjvCompiler();
  return (externalSchemas, options) => {
    // verbose: errors carry their schema, so an anyOf failure can quote its description
    const coercing = pool(externalSchemas, {
      ...options,
      customOptions: { ...options?.customOptions, verbose: true },
    } as typeof options);
    const exact = pool(externalSchemas, {
      ...options,
      customOptions: { ...options?.customOptions, coerceTypes: false, verbose: true },
    } as typeof options);
    return (route) => (route.httpPart === "body" ? exact(route) : coercing(route));
  };
}
