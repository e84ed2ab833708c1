// A request's `model` → what serves it: a base model under MODELS_DIR, or a tuned model or
// checkpoint of the caller's project (src/store/models/tuned-models.ts) = its base model plus the
// adapter archive in the blob store. Anything else, another project's tuned model included, is
// OpenAI's 404 model_not_found.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { readBlob } from "../store/blobs/blob-store.js";
import { DomainError } from "../store/domain-error.js";
import { readTarArchive } from "../store/models/adapter-archive.js";
import { type BaseModel, findBaseModel } from "../store/models/base-models.js";
import { findTunedModel, isTunedModelId } from "../store/models/tuned-models.js";
import type { AdapterSource } from "./model-server.js";
import type { ServingContext } from "./serving-context.js";

export interface ServedModel {
  /** the id the request named (echoed in responses) */
  id: string;
  base: BaseModel;
  /** null for a base model */
  tuned: AdapterSource | null;
}

export function modelNotFound(id: string): DomainError {
  return new DomainError("not_found", `The model '${id}' does not exist or you do not have access to it.`, {
    param: "model",
    code: "model_not_found",
  });
}

/** Unpack a tuned model's archive into a fresh temporary folder (flat names only). */
async function unpackArchive(
  ctx: ServingContext,
  blobId: string,
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of readBlob(ctx.database, blobId)) chunks.push(chunk);
  const dir = await mkdtemp(path.join(tmpdir(), "tunehouse-adapter-"));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    for (const entry of await readTarArchive(Buffer.concat(chunks))) {
      if (entry.name !== path.basename(entry.name) || entry.name.startsWith("."))
        throw new Error(`adapter archive ${blobId}: unexpected entry name ${JSON.stringify(entry.name)}`);
      await writeFile(path.join(dir, entry.name), entry.data);
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { dir, cleanup };
}

export async function resolveServedModel(
  ctx: ServingContext,
  projectId: string,
  id: string,
): Promise<ServedModel> {
  if (!isTunedModelId(id)) {
    const base = await findBaseModel(ctx.config, id);
    if (!base) throw modelNotFound(id);
    return { id, base, tuned: null };
  }
  const tuned = await findTunedModel(ctx.database.db, projectId, id);
  if (!tuned) throw modelNotFound(id);
  const base = await findBaseModel(ctx.config, tuned.baseModel);
  if (!base) {
    throw new DomainError(
      "not_found",
      `The model '${id}' needs its base model '${tuned.baseModel}', which is not under MODELS_DIR.`,
      {
        param: "model",
        code: "model_not_found",
      },
    );
  }
  const blobId = tuned.adapterBlobId;
  return { id, base, tuned: { key: blobId, materialize: () => unpackArchive(ctx, blobId) } };
}
