// The hyperparameters a job asks for, checked at create with the engine's own rules
// (worker/engine/train/hyperparameters.ts) beyond what the schema says (target_modules names,
// lora_alpha's range), so a job that is accepted never fails later on a value; a problem is a
// 400 naming the field.
import { resolveDpoHyperparameters } from "../../../worker/engine/train/dpo-hyperparameters.js";
import { HyperparameterError, resolveHyperparameters } from "../../../worker/engine/train/hyperparameters.js";
import type { components } from "../../contract/openapi-types.js";
import { badRequest } from "../api-error.js";

type SupervisedHyperparameters = components["schemas"]["FineTuningHyperparameters"];
type DpoHyperparameters = components["schemas"]["FineTuningDpoHyperparameters"];

// The example count only feeds `auto` values, which are always in range: any n checks the rest.
const ANY_EXAMPLE_COUNT = 100;

function withEngineRules<T>(input: T, paramPrefix: string, resolve: (input: T) => unknown): T {
  try {
    resolve(input);
  } catch (err) {
    if (!(err instanceof HyperparameterError)) throw err;
    throw badRequest(
      `Invalid value for '${paramPrefix}.${err.param}': ${err.message}.`,
      `${paramPrefix}.${err.param}`,
      "invalid_value",
    );
  }
  return input;
}

/** `raw`: the object under `paramPrefix` ("method.supervised.hyperparameters"), schema-checked. */
export function checkHyperparameters(
  raw: SupervisedHyperparameters | undefined,
  paramPrefix: string,
): SupervisedHyperparameters {
  return withEngineRules(raw ?? {}, paramPrefix, (input) => resolveHyperparameters(input, ANY_EXAMPLE_COUNT));
}

/** `raw`: `method.dpo.hyperparameters`, schema-checked. */
export function checkDpoHyperparameters(
  raw: DpoHyperparameters | undefined,
  paramPrefix: string,
): DpoHyperparameters {
  return withEngineRules(raw ?? {}, paramPrefix, (input) =>
    resolveDpoHyperparameters(input, ANY_EXAMPLE_COUNT),
  );
}
