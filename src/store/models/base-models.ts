// Base models: folders under MODELS_DIR that hold a Hugging Face causal LM (config.json,
// tokenizer.json, and *.safetensors or a sharded index), at depth 1 (`tiny-chatml`) or 2
// (`org/name`, like Hub ids). The id is the relative path. Jobs and chat resolve model ids
// with findBaseModel, which refuses anything that could point outside MODELS_DIR.
import { readdir, realpath, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { components } from "../../contract/openapi-types.js";

export interface BaseModel {
  id: string;
  /** absolute folder path (symlinks resolved, always inside MODELS_DIR) */
  dir: string;
  /** folder modification time, Unix seconds */
  created: number;
}

export type ModelObject = components["schemas"]["Model"];

/** Base models are ours, not a tenant's: OpenAI marks its own base models `system` too. */
export const BASE_MODEL_OWNER = "system";

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** `name` or `org/name`, each segment a plain file name (no `.`/`..`, no hidden folders). */
export function isValidModelId(id: string): boolean {
  const segments = id.split("/");
  return (
    segments.length >= 1 && segments.length <= 2 && segments.every((s) => SEGMENT.test(s) && !/^\.+$/.test(s))
  );
}

async function isModelFolder(dir: string): Promise<boolean> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return false;
  }
  const hasWeights =
    names.some((n) => n.endsWith(".safetensors")) || names.includes("model.safetensors.index.json");
  return names.includes("config.json") && names.includes("tokenizer.json") && hasWeights;
}

async function insideRoot(root: string, dir: string): Promise<string | null> {
  try {
    const [realRoot, realDir] = await Promise.all([realpath(root), realpath(dir)]);
    const rel = relative(realRoot, realDir);
    if (rel === "" || rel.startsWith("..") || rel.startsWith(sep)) return null;
    return realDir;
  } catch {
    return null;
  }
}

async function describe(modelsDir: string, id: string): Promise<BaseModel | null> {
  const dir = await insideRoot(modelsDir, join(modelsDir, ...id.split("/")));
  if (dir === null || !(await isModelFolder(dir))) return null;
  const info = await stat(dir);
  return { id, dir, created: Math.floor(info.mtimeMs / 1000) };
}

async function subfolders(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => (e.isDirectory() || e.isSymbolicLink()) && SEGMENT.test(e.name))
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

export async function listBaseModels(modelsDir: string): Promise<BaseModel[]> {
  const found: BaseModel[] = [];
  for (const name of await subfolders(modelsDir)) {
    const model = await describe(modelsDir, name);
    if (model) {
      found.push(model);
      continue;
    }
    for (const child of await subfolders(join(modelsDir, name))) {
      const nested = await describe(modelsDir, `${name}/${child}`);
      if (nested) found.push(nested);
    }
  }
  return found;
}

export async function findBaseModel(config: { modelsDir: string }, id: string): Promise<BaseModel | null> {
  if (!isValidModelId(id)) return null;
  return describe(config.modelsDir, id);
}

export function toModelObject(model: BaseModel): ModelObject {
  return { id: model.id, object: "model", created: model.created, owned_by: BASE_MODEL_OWNER };
}
