// POST /v1/fine_tuning/jobs: the body, once the spec's CreateFineTuningJobRequest schema has
// checked its shapes and ranges (jobs.ts), as the job to create. What the schema cannot say
// is here: the rules across fields (one form of hyperparameters, not both), the methods this
// server refuses, an empty id, and the engine's own hyperparameter rules. The file and model
// checks need the database and the models folder and live in create-job-checks.ts.
import { randomInt } from "node:crypto";
import type { components } from "../../contract/openapi-types.js";
import type { JobMethod, NewJob } from "../../store/jobs/job-spec.js";
import { badRequest } from "../api-error.js";
import { checkDpoHyperparameters, checkHyperparameters } from "./hyperparameter-input.js";

export type CreateJobBody = components["schemas"]["CreateFineTuningJobRequest"];
/** The checked body is the store's new job; its method is the shape the job row keeps. */
export type CreateJobRequest = NewJob;

const MAX_SEED = 2147483647;

/** The schema takes "" as a string; an empty id is a missing one. */
function requiredId(value: string, name: string): string {
  if (value === "")
    throw badRequest(`Missing required parameter: '${name}'.`, name, "missing_required_parameter");
  return value;
}

function dpoMethod(body: CreateJobBody, method: NonNullable<CreateJobBody["method"]>): JobMethod {
  if (body.hyperparameters !== undefined && body.hyperparameters !== null) {
    throw badRequest(
      "The deprecated 'hyperparameters' apply to supervised jobs: give them in 'method.dpo.hyperparameters'.",
      "hyperparameters",
      "invalid_value",
    );
  }
  const prefix = "method.dpo.hyperparameters";
  return {
    type: "dpo",
    dpo: { hyperparameters: checkDpoHyperparameters(method.dpo?.hyperparameters, prefix) },
  };
}

function supervisedMethod(body: CreateJobBody): JobMethod {
  const legacy = body.hyperparameters;
  const fromMethod = body.method?.supervised?.hyperparameters;
  if (legacy != null && fromMethod != null) {
    throw badRequest(
      "Give hyperparameters in 'method.supervised.hyperparameters' or in the deprecated 'hyperparameters', not both.",
      "hyperparameters",
      "invalid_value",
    );
  }
  const hyperparameters =
    fromMethod != null
      ? checkHyperparameters(fromMethod, "method.supervised.hyperparameters")
      : checkHyperparameters(legacy ?? undefined, "hyperparameters");
  return { type: "supervised", supervised: { hyperparameters } };
}

function checkMethod(body: CreateJobBody): JobMethod {
  const method = body.method;
  if (method == null || method.type === "supervised") return supervisedMethod(body);
  if (method.type === "dpo") return dpoMethod(body, method);
  throw badRequest(
    `Method '${method.type}' is not supported: this server trains 'supervised' and 'dpo' jobs.`,
    "method.type",
    "unsupported_method",
  );
}

/** `body` has passed the CreateFineTuningJobRequest schema. */
export function parseCreateJobRequest(body: CreateJobBody): CreateJobRequest {
  return {
    model: requiredId(body.model, "model"),
    trainingFile: requiredId(body.training_file, "training_file"),
    validationFile: body.validation_file ?? null,
    method: checkMethod(body),
    suffix: body.suffix ?? null,
    seed: body.seed ?? randomInt(0, MAX_SEED),
    metadata: body.metadata ?? null,
    integrations: body.integrations ?? null,
  };
}
