// What a new job's body names must exist and be usable: the model (a folder under MODELS_DIR
// whose architecture the engine trains, or the caller's LoRA-tuned model) and the files (the
// caller's, with purpose `fine-tune`). Each problem is a 400 naming the field.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseModelConfig, UnsupportedModelError } from "../../../worker/engine/hf/config.js";
import { findFile } from "../../store/files/file-repository.js";
import { findParentModel } from "../../store/jobs/parent-model.js";
import { findBaseModel } from "../../store/models/base-models.js";
import { badRequest } from "../api-error.js";
import type { AppContext } from "../app-context.js";
import type { CreateJobRequest } from "./create-job-request.js";

/** The base model a job trains on: `id` itself, or the base of the caller's tuned model `id`. */
async function checkModel(ctx: AppContext, projectId: string, id: string): Promise<string> {
  const parent = await findParentModel(ctx.database.db, projectId, id);
  const baseId = parent?.baseModel ?? id;
  const model = await findBaseModel(ctx.config, baseId);
  if (!model) {
    throw badRequest(
      `Model '${id}' is not available for fine-tuning: it is not a model folder under MODELS_DIR (see GET /v1/models).`,
      "model",
      "model_not_found",
    );
  }
  try {
    parseModelConfig(JSON.parse(await readFile(join(model.dir, "config.json"), "utf8")));
  } catch (err) {
    const why =
      err instanceof UnsupportedModelError
        ? err.message
        : `config.json cannot be read (${(err as Error).message})`;
    throw badRequest(`Model '${id}' cannot be fine-tuned: ${why}`, "model", "unsupported_model");
  }
  if (parent?.fullFinetune) {
    throw badRequest(
      `Model '${id}' is a full fine-tune; fine-tuning it again is not supported yet (a LoRA-tuned model can be).`,
      "model",
      "unsupported_model",
    );
  }
  return baseId;
}

async function checkTrainingFile(
  ctx: AppContext,
  projectId: string,
  id: string,
  param: string,
): Promise<void> {
  const file = await findFile(ctx.database.db, projectId, id);
  if (!file) throw badRequest(`Invalid file id '${id}': no such file.`, param, "invalid_file_id");
  if (file.purpose !== "fine-tune") {
    throw badRequest(
      `File '${id}' has purpose '${file.purpose}'; fine-tuning needs a file uploaded with purpose 'fine-tune'.`,
      param,
      "invalid_file_purpose",
    );
  }
}

/** Checks the model and files of `req`; answers the base model the job trains on. */
export async function checkCreate(
  ctx: AppContext,
  projectId: string,
  req: CreateJobRequest,
): Promise<string> {
  const baseModel = await checkModel(ctx, projectId, req.model);
  await checkTrainingFile(ctx, projectId, req.trainingFile, "training_file");
  if (req.validationFile !== null)
    await checkTrainingFile(ctx, projectId, req.validationFile, "validation_file");
  return baseModel;
}
