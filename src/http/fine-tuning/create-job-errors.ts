// How a create-job body that fails its schema is answered: the shared wording
// (schema-errors.ts), with the two refinements its callers had before the schema existed: a
// value of the wrong kind is `invalid_type` (and an "auto"-or-number field says so), and a
// malformed integration is named as the whole item, with the one form accepted.
import type { FastifySchemaValidationError } from "fastify";
import { ApiError, badRequest } from "../api-error.js";
import { describeFailure, schemaValidationError } from "../schema-errors.js";

const SHAPE_KEYWORDS = new Set(["type", "enum", "oneOf", "anyOf"]);

/** Every branch refused the value's type (a string where a number goes), none its range. */
function isTypeMismatch(errors: FastifySchemaValidationError[]): boolean {
  return errors.some((e) => e.keyword === "type") && errors.every((e) => SHAPE_KEYWORDS.has(e.keyword));
}

export function createJobSchemaError(errors: FastifySchemaValidationError[], context: string): ApiError {
  const error = schemaValidationError(errors, context);
  if (context !== "body") return error;
  if (error.param === null && errors[0]?.keyword === "type")
    return badRequest("The request body must be a JSON object.", null, "invalid_json");
  const item = /^integrations\.(\d+)(\.|$)/.exec(error.param ?? "");
  if (item) {
    return badRequest(
      `integrations[${item[1]}] must be {"type":"wandb","wandb":{"project":…}} (stored and echoed; this server sends nothing to W&B).`,
      `integrations.${item[1]}`,
      "invalid_value",
    );
  }
  if (!isTypeMismatch(errors)) return error;
  const anyOf = errors.find((e) => e.keyword === "oneOf" || e.keyword === "anyOf");
  const message = anyOf ? describeFailure(anyOf, error.param) : error.message;
  return new ApiError(400, message, { param: error.param, code: "invalid_type" });
}
