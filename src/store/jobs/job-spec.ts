// What a job row stores about the training it asks for: the method with its hyperparameters as
// the caller gave them (`auto` until the worker resolves and writes them back), and the fields
// of a new job. The shapes are the contract's (openapi/openapi.yaml), so the api, the worker
// and the store read one definition.
import type { components } from "../../contract/openapi-types.js";

type Schemas = components["schemas"];
export type SupervisedHyperparameters = Schemas["FineTuningHyperparameters"];
export type DpoHyperparameters = Schemas["FineTuningDpoHyperparameters"];

export type JobMethod =
  | { type: "supervised"; supervised: { hyperparameters: SupervisedHyperparameters } }
  | { type: "dpo"; dpo: { hyperparameters: DpoHyperparameters } };

/** The hyperparameters a job's method carries (DPO's include beta, loss_type and rpo_alpha). */
export function methodHyperparameters(method: JobMethod): SupervisedHyperparameters & DpoHyperparameters {
  return method.type === "dpo" ? method.dpo.hyperparameters : method.supervised.hyperparameters;
}

/** A new job as the api checked it (POST /v1/fine_tuning/jobs). */
export interface NewJob {
  model: string;
  trainingFile: string;
  validationFile: string | null;
  method: JobMethod;
  suffix: string | null;
  seed: number;
  metadata: Record<string, string> | null;
  integrations: unknown[] | null;
}
