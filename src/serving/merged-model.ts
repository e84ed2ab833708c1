// GET /v1/fine_tuning/jobs/{id}/merged: a tuned model as merged full weights, one tar of a
// transformers-loadable folder (config.json, model.safetensors, the base's tokenizer and
// generation files). A LoRA model's archive (its whole chain composed into one adapter) is merged
// into the base model with the engine; a full fine-tune's archive is a whole model already.
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend } from "../../worker/engine/backend/backend.js";
import { mergeAdapterIntoBase } from "../../worker/engine/lora/merge-adapter.js";
import { loadModel } from "../../worker/engine/model/load-model.js";
import { readBlob } from "../store/blobs/blob-store.js";
import { DomainError } from "../store/domain-error.js";
import { archiveFolder, readTarArchive } from "../store/models/adapter-archive.js";
import { findBaseModel } from "../store/models/base-models.js";
import type { ServingContext } from "./serving-context.js";

/** The merged-weights archive of a tuned model stored as `adapterBlobId` on `baseModel`. */
export async function mergedModelArchive(
  ctx: ServingContext,
  baseModel: string,
  adapterBlobId: string,
): Promise<Uint8Array> {
  const base = await findBaseModel(ctx.config, baseModel);
  if (!base) {
    throw new DomainError("not_found", `The base model '${baseModel}' is no longer under MODELS_DIR.`, {
      param: "fine_tuning_job_id",
      code: "model_not_found",
    });
  }
  const chunks: Uint8Array[] = [];
  for await (const chunk of readBlob(ctx.database, adapterBlobId)) chunks.push(chunk);
  const dir = await mkdtemp(join(tmpdir(), "tunehouse-merge-"));
  try {
    const unpacked = join(dir, "archive");
    const out = join(dir, "merged");
    await mkdir(unpacked);
    const names: string[] = [];
    for (const entry of await readTarArchive(Buffer.concat(chunks))) {
      if (entry.name.includes("/") || entry.name.startsWith(".")) continue;
      await writeFile(join(unpacked, entry.name), entry.data);
      names.push(entry.name);
    }
    if (names.includes("model.safetensors")) return await archiveFolder(unpacked);
    await initBackend();
    const model = await loadModel(base.dir);
    try {
      await mergeAdapterIntoBase(model, unpacked);
      await model.saveFullModel(out);
    } finally {
      model.dispose();
    }
    if (names.includes("parents.json")) {
      await copyFile(join(unpacked, "parents.json"), join(out, "parents.json"));
    }
    return await archiveFolder(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
