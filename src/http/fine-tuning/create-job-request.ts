// POST /v1/fine_tuning/jobs: the body checked field by field, each problem a 400 whose `param`
// names the field (OpenAI's behaviour). The file and model checks need the database and the
// models folder and live in routes.ts; everything here is about the body alone.
import { randomInt } from "node:crypto";
import type { JobMethod, NewJob } from "../../store/jobs/job-spec.js";
import { badRequest } from "../api-error.js";
import { checkDpoHyperparameters, checkHyperparameters } from "./hyperparameter-input.js";

/** The checked body is the store's new job; its method is the shape the job row keeps. */
export type CreateJobRequest = NewJob;

const MAX_SEED = 2147483647;
const SUFFIX = /^[A-Za-z0-9._-]{1,64}$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function requiredString(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (v === undefined || v === null || v === "") {
    throw badRequest(`Missing required parameter: '${name}'.`, name, "missing_required_parameter");
  }
  if (typeof v !== "string") throw badRequest(`'${name}' must be a string.`, name, "invalid_type");
  return v;
}

export function checkMetadata(raw: unknown): Record<string, string> | null {
  if (raw === undefined || raw === null) return null;
  if (!isPlainObject(raw))
    throw badRequest("'metadata' must be an object of string values.", "metadata", "invalid_type");
  const entries = Object.entries(raw);
  if (entries.length > 16)
    throw badRequest("'metadata' may hold at most 16 pairs.", "metadata", "invalid_value");
  for (const [k, v] of entries) {
    if (k.length > 64)
      throw badRequest(
        `metadata key '${k.slice(0, 20)}…' is longer than 64 characters.`,
        "metadata",
        "invalid_value",
      );
    if (typeof v !== "string")
      throw badRequest(`metadata['${k}'] must be a string.`, `metadata.${k}`, "invalid_type");
    if (v.length > 512)
      throw badRequest(`metadata['${k}'] is longer than 512 characters.`, `metadata.${k}`, "invalid_value");
  }
  return raw as Record<string, string>;
}

function checkIntegrations(raw: unknown): unknown[] | null {
  if (raw === undefined || raw === null) return null;
  if (!Array.isArray(raw))
    throw badRequest("'integrations' must be an array.", "integrations", "invalid_type");
  raw.forEach((item, i) => {
    const ok =
      isPlainObject(item) &&
      item.type === "wandb" &&
      isPlainObject(item.wandb) &&
      typeof item.wandb.project === "string" &&
      item.wandb.project !== "";
    if (!ok) {
      throw badRequest(
        `integrations[${i}] must be {"type":"wandb","wandb":{"project":…}} (stored and echoed; this server sends nothing to W&B).`,
        `integrations.${i}`,
        "invalid_value",
      );
    }
  });
  return raw;
}

function checkMethod(body: Record<string, unknown>): JobMethod {
  const legacy = body.hyperparameters;
  const method = body.method;
  if (method === undefined || method === null) {
    return {
      type: "supervised",
      supervised: { hyperparameters: checkHyperparameters(legacy, "hyperparameters", false) },
    };
  }
  if (!isPlainObject(method)) throw badRequest("'method' must be an object.", "method", "invalid_type");
  if (method.type === "reinforcement") {
    throw badRequest(
      "Method 'reinforcement' is not supported: this server trains 'supervised' and 'dpo' jobs.",
      "method.type",
      "unsupported_method",
    );
  }
  if (method.type === "dpo") {
    if (legacy !== undefined && legacy !== null) {
      throw badRequest(
        "The deprecated 'hyperparameters' apply to supervised jobs: give them in 'method.dpo.hyperparameters'.",
        "hyperparameters",
        "invalid_value",
      );
    }
    const dpo = method.dpo ?? {};
    if (!isPlainObject(dpo))
      throw badRequest("'method.dpo' must be an object.", "method.dpo", "invalid_type");
    return {
      type: "dpo",
      dpo: { hyperparameters: checkDpoHyperparameters(dpo.hyperparameters, "method.dpo.hyperparameters") },
    };
  }
  if (method.type !== "supervised") {
    throw badRequest(
      `Invalid value for 'method.type': ${JSON.stringify(method.type)}. Supported values are: 'supervised', 'dpo'.`,
      "method.type",
      "invalid_value",
    );
  }
  const supervised = method.supervised ?? {};
  if (!isPlainObject(supervised))
    throw badRequest("'method.supervised' must be an object.", "method.supervised", "invalid_type");
  const fromMethod = supervised.hyperparameters;
  if (legacy !== undefined && legacy !== null && fromMethod !== undefined && fromMethod !== null) {
    throw badRequest(
      "Give hyperparameters in 'method.supervised.hyperparameters' or in the deprecated 'hyperparameters', not both.",
      "hyperparameters",
      "invalid_value",
    );
  }
  const hyperparameters =
    fromMethod !== undefined && fromMethod !== null
      ? checkHyperparameters(fromMethod, "method.supervised.hyperparameters", true)
      : checkHyperparameters(legacy, "hyperparameters", false);
  return { type: "supervised", supervised: { hyperparameters } };
}

export function parseCreateJobRequest(body: unknown): CreateJobRequest {
  if (!isPlainObject(body)) throw badRequest("The request body must be a JSON object.", null, "invalid_json");
  const model = requiredString(body, "model");
  const trainingFile = requiredString(body, "training_file");
  const validationFile = body.validation_file ?? null;
  if (validationFile !== null && typeof validationFile !== "string") {
    throw badRequest("'validation_file' must be a file id or null.", "validation_file", "invalid_type");
  }
  const suffix = body.suffix ?? null;
  if (suffix !== null && (typeof suffix !== "string" || !SUFFIX.test(suffix))) {
    throw badRequest(
      "'suffix' must be 1 to 64 characters of letters, digits, '.', '_' or '-'.",
      "suffix",
      "invalid_value",
    );
  }
  const seedRaw = body.seed ?? null;
  if (
    seedRaw !== null &&
    !(Number.isInteger(seedRaw) && (seedRaw as number) >= 0 && (seedRaw as number) <= MAX_SEED)
  ) {
    throw badRequest(`'seed' must be an integer from 0 to ${MAX_SEED}.`, "seed", "invalid_value");
  }
  return {
    model,
    trainingFile,
    validationFile: validationFile as string | null,
    method: checkMethod(body),
    suffix: suffix as string | null,
    seed: (seedRaw as number | null) ?? randomInt(0, MAX_SEED),
    metadata: checkMetadata(body.metadata),
    integrations: checkIntegrations(body.integrations),
  };
}
