// Fine-tuning a fine-tuned model, in the worker: the parent's adapter archive unpacked for
// merging into the base weights, and the child's archive written with its chain.
//
// A chained LoRA model's archive holds:
//   adapter_config.json + adapter_model.safetensors   the whole chain as ONE LoRA on the base model
//                                                       (parents' and own adapters stacked: rank =
//                                                       the sum, lora_alpha = rank), so PEFT, vLLM and
//                                                       chat load it on the base like any adapter
//   own_adapter_config.json + own_adapter_model.safetensors   this job's adapter alone, which applies
//                                                       to the base with the parents merged in order
//   parents.json   { base_model, parents: [{ model, job }] oldest first, files: what each file is }
// The parent's own archive is composed already, so merging it merges the whole chain before it.
import { mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DatabaseHandle } from "../src/store/db/client.js";
import { archiveFolder, readTarArchive } from "../src/store/models/adapter-archive.js";
import { findTunedModel } from "../src/store/models/tuned-models.js";
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from "./engine/lora/adapter-io.js";
import { composeAdapterFolders } from "./engine/lora/merge-adapter.js";
import type { CausalLM } from "./engine/model/causal-lm.js";
import { readBlobBytes } from "./job-blobs.js";

export const PARENTS_FILE = "parents.json";

export interface ChainLink {
  model: string;
  job: string;
}

export interface ParentAdapter {
  /** the parent's archive unpacked (its composed adapter_config.json + adapter_model.safetensors) */
  dir: string;
  /** every tuned model before the new one, oldest first (the parent last) */
  chain: ChainLink[];
  cleanup(): Promise<void>;
}

/** The parent's archive in a temporary folder; null when the tuned model no longer exists. */
export async function fetchParentAdapter(
  handle: DatabaseHandle,
  projectId: string,
  modelId: string,
): Promise<ParentAdapter | null> {
  const tuned = await findTunedModel(handle.db, projectId, modelId);
  if (!tuned) return null;
  const dir = await mkdtemp(join(tmpdir(), "tunehouse-parent-"));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    for (const entry of await readTarArchive(await readBlobBytes(handle, tuned.adapterBlobId))) {
      if (entry.name.includes("/") || entry.name.startsWith(".")) continue;
      await writeFile(join(dir, entry.name), entry.data);
    }
    const before = await readFile(join(dir, PARENTS_FILE), "utf8").then(
      (text) => (JSON.parse(text) as { parents: ChainLink[] }).parents,
      () => [] as ChainLink[],
    );
    return { dir, chain: [...before, { model: tuned.id, job: tuned.jobId }], cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The archive of a model trained on top of `parent` (see the header). */
export async function chainedModelArchive(
  model: CausalLM,
  parent: ParentAdapter,
  fullFinetune: boolean,
  baseModel: string,
): Promise<Uint8Array> {
  const dir = await mkdtemp(join(tmpdir(), "tunehouse-adapter-"));
  try {
    const files: Record<string, string> = {};
    if (fullFinetune) {
      await model.saveFullModel(dir);
      files["model.safetensors"] =
        "the whole model: the base with every parent merged, then fully fine-tuned";
    } else {
      const own = join(dir, "own");
      await model.saveAdapter(own, baseModel);
      await composeAdapterFolders(parent.dir, own, dir, baseModel);
      await rename(join(own, ADAPTER_CONFIG_FILE), join(dir, `own_${ADAPTER_CONFIG_FILE}`));
      await rename(join(own, ADAPTER_WEIGHTS_FILE), join(dir, `own_${ADAPTER_WEIGHTS_FILE}`));
      await rm(own, { recursive: true, force: true });
      files[ADAPTER_WEIGHTS_FILE] =
        "this model as one LoRA on base_model (every parent's adapter and this job's stacked; load with PeftModel.from_pretrained)";
      files[`own_${ADAPTER_WEIGHTS_FILE}`] =
        "this job's adapter alone: it applies to base_model with the parents merged in order (merge_and_unload)";
    }
    const parents = { base_model: baseModel, parents: parent.chain, files };
    await writeFile(join(dir, PARENTS_FILE), `${JSON.stringify(parents, null, 2)}\n`);
    return await archiveFolder(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
