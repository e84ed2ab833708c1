// ajv's errors for a request that fails its OpenAPI schema, as one 400 naming the field: the
// shared wording of every schema-validated route (error-handler.ts); a route may refine it
// through Fastify's `schemaErrorFormatter` (fine-tuning/create-job-errors.ts).
import { ApiError } from "./api-error.js";

export interface AjvError {
  instancePath?: string;
  keyword?: string;
  params?: Record<string, unknown>;
  message?: string;
  /** set on the errors of a `propertyNames` subschema: the object key that failed */
  propertyName?: string;
  /** with ajv's `verbose`: the schema holding the failed keyword */
  parentSchema?: { description?: unknown; properties?: Record<string, unknown> };
  /** with ajv's `verbose`: the value that failed */
  data?: unknown;
}

/** A number against an enum of strings (the `"auto"` of `"auto"` or a number): not the branch meant. */
function isNumberAgainstWords(e: AjvError): boolean {
  const allowed = e.params?.allowedValues;
  return (
    e.keyword === "enum" &&
    typeof e.data === "number" &&
    Array.isArray(allowed) &&
    allowed.every((v) => typeof v === "string")
  );
}

/** "body/expires_after/seconds" + missing "x" → "expires_after.seconds.x" */
export function paramOf(e: AjvError): string | null {
  const path = (e.instancePath ?? "").split("/").filter(Boolean);
  if (e.keyword === "required" && typeof e.params?.missingProperty === "string")
    path.push(e.params.missingProperty);
  if (e.keyword === "additionalProperties" && typeof e.params?.additionalProperty === "string") {
    path.push(e.params.additionalProperty);
  }
  return path.length > 0 ? path.join(".") : null;
}

/**
 * An `anyOf` failure lists every branch's error, then its own. The branch that got deepest
 * into the value without a type error is what the caller meant (`stop` with 5 strings: the
 * array branch's maxItems; `n_epochs: 0`: the integer branch's minimum, not `"auto"`), else no
 * branch fits and the schema's description says what does.
 */
export function mostSpecificError(errors: AjvError[]): { error: AjvError; anyOf: AjvError | null } {
  const anyOf = errors.find((e) => e.keyword === "anyOf" || e.keyword === "oneOf") ?? null;
  if (!anyOf) return { error: errors[0] ?? {}, anyOf: null };
  const depth = (e: AjvError) => (e.instancePath ?? "").split("/").length;
  const specific = errors
    .filter((e) => e !== anyOf && e.keyword !== "type" && e.keyword !== "anyOf" && e.keyword !== "oneOf")
    .filter((e) => !isNumberAgainstWords(e))
    .sort((a, b) => depth(b) - depth(a))[0];
  return { error: specific ?? anyOf, anyOf };
}

/** The schema's own description of what it accepts, as the end of a sentence. */
function expectedFrom(e: AjvError): string | null {
  const description = e.parentSchema?.description;
  if (typeof description !== "string") return null;
  return description.replace(/^./, (c) => c.toLowerCase()).replace(/\.$/, "");
}

export function describeFailure(e: AjvError, param: string | null): string {
  const limit = e.params?.limit;
  if (e.propertyName !== undefined) {
    const key = e.propertyName.length > 20 ? `${e.propertyName.slice(0, 20)}…` : e.propertyName;
    return e.keyword === "maxLength"
      ? `Invalid key '${key}' in '${param}': keys are at most ${limit} characters.`
      : `Invalid key '${key}' in '${param}': ${e.message}.`;
  }
  switch (e.keyword) {
    case "maxItems":
      return `Invalid '${param}': at most ${limit} items are allowed.`;
    case "minItems":
      return `Invalid '${param}': at least ${limit} item${limit === 1 ? " is" : "s are"} required.`;
    case "maxLength":
      return `Invalid '${param}': at most ${limit} characters are allowed.`;
    case "pattern": {
      const expected = expectedFrom(e);
      return expected
        ? `Invalid value for '${param}': expected ${expected}.`
        : `Invalid value for '${param}': ${e.message}.`;
    }
    case "anyOf":
    case "oneOf": {
      const expected = expectedFrom(e);
      return `Invalid value for '${param}': ${expected ? `expected ${expected}` : "it has none of the allowed forms"}.`;
    }
    default:
      return `Invalid value for '${param}': ${e.message}.`;
  }
}

function unrecognizedArgument(e: AjvError, param: string | null): string {
  const known = Object.keys(e.parentSchema?.properties ?? {});
  const supported = known.length > 0 ? ` (supported: ${known.join(", ")})` : "";
  return `Unrecognized request argument supplied: ${param}${supported}`;
}

/** `context`: the part that failed ("body", "querystring", "params"). */
export function schemaValidationError(errors: AjvError[], context: string | undefined): ApiError {
  const { error: first } = mostSpecificError(errors);
  const param = paramOf(first);
  let message: string;
  if (first.keyword === "required") message = `Missing required parameter: '${param}'.`;
  else if (first.keyword === "additionalProperties") message = unrecognizedArgument(first, param);
  else if (first.keyword === "enum" && Array.isArray(first.params?.allowedValues)) {
    message = `Invalid value for '${param}': must be one of ${(first.params.allowedValues as unknown[]).map((v) => `'${v}'`).join(", ")}.`;
  } else message = describeFailure(first, param ?? context ?? null);
  const code = first.keyword === "required" ? "missing_required_parameter" : "invalid_value";
  return new ApiError(400, message, { param, code });
}
