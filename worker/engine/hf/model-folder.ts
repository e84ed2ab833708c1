// A model id names a folder under MODELS_DIR ("tiny-chatml", "meta-llama/Llama-3.2-1B").
// This file maps ids to folders safely and reads what the engine needs from a folder:
// config.json, the weights (single or sharded safetensors) and generation_config.json's eos ids.

import { readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { expectedWeightShapes } from "./checkpoint-layout.js";
import { type ModelConfig, parseModelConfig } from "./config.js";
import { type FloatTensorData, readSafetensors, readSafetensorsHeader } from "./safetensors.js";

export class ModelFolderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelFolderError";
  }
}

/** Shape check only (no file system): segments of [A-Za-z0-9._-], no "." / ".." segments, not absolute. */
export function isValidModelId(modelId: string): boolean {
  if (modelId.length === 0 || modelId.length > 256) return false;
  const segments = modelId.split("/");
  return segments.every((s) => s.length > 0 && s !== "." && s !== ".." && /^[A-Za-z0-9._-]+$/.test(s));
}

function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
}

/**
 * The folder for `modelId` under `modelsDir`. Refuses absolute ids, `..`, and any path whose real
 * location (after symlinks) is outside `modelsDir`. The folder must exist and hold a config.json.
 */
export async function resolveModelFolder(modelsDir: string, modelId: string): Promise<string> {
  if (!isValidModelId(modelId)) {
    throw new ModelFolderError(
      `invalid model id ${JSON.stringify(modelId)}: use folder names under MODELS_DIR, no "..", no absolute paths`,
    );
  }
  const root = await realpath(modelsDir).catch(() => {
    throw new ModelFolderError(`MODELS_DIR ${modelsDir} does not exist`);
  });
  const candidate = path.join(root, ...modelId.split("/"));
  const real = await realpath(candidate).catch(() => {
    throw new ModelFolderError(`model ${JSON.stringify(modelId)} not found under MODELS_DIR`);
  });
  if (!isInside(root, real)) {
    throw new ModelFolderError(`model ${JSON.stringify(modelId)} resolves outside MODELS_DIR; refused`);
  }
  const configStat = await stat(path.join(real, "config.json")).catch(() => null);
  if (!configStat?.isFile())
    throw new ModelFolderError(`model ${JSON.stringify(modelId)} has no config.json`);
  return real;
}

async function readJson(file: string): Promise<unknown> {
  const text = await readFile(file, "utf8");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelFolderError(`${file}: invalid JSON (${(err as Error).message})`);
  }
}

async function readJsonIfPresent(file: string): Promise<unknown | null> {
  const exists = await stat(file)
    .then((s) => s.isFile())
    .catch(() => false);
  return exists ? readJson(file) : null;
}

export async function readModelConfig(folder: string, configFile = "config.json"): Promise<ModelConfig> {
  return parseModelConfig(await readJson(path.join(folder, configFile)));
}

export interface GenerationDefaults {
  eosTokenIds: number[];
  bosTokenId: number | null;
  padTokenId: number | null;
}

/** generation_config.json's token ids; empty when the folder has none. */
export async function readGenerationConfig(folder: string): Promise<GenerationDefaults> {
  const raw = (await readJsonIfPresent(path.join(folder, "generation_config.json"))) as Record<
    string,
    unknown
  > | null;
  const eos = raw?.eos_token_id;
  const eosTokenIds = (Array.isArray(eos) ? eos : eos == null ? [] : [eos]).filter((id): id is number =>
    Number.isInteger(id),
  );
  return {
    eosTokenIds,
    bosTokenId: Number.isInteger(raw?.bos_token_id) ? (raw?.bos_token_id as number) : null,
    padTokenId: Number.isInteger(raw?.pad_token_id) ? (raw?.pad_token_id as number) : null,
  };
}

/** Stop ids for generation: generation_config.json's eos ids, else config.json's. */
export async function readEosTokenIds(folder: string, config: ModelConfig): Promise<number[]> {
  const gen = await readGenerationConfig(folder);
  return gen.eosTokenIds.length > 0 ? gen.eosTokenIds : config.eosTokenIds;
}

function shardPath(folder: string, file: string, indexFile: string): string {
  if (typeof file !== "string" || path.isAbsolute(file) || file.split(/[\\/]/).includes("..")) {
    throw new ModelFolderError(
      `${indexFile}: shard file ${JSON.stringify(file)} must be a file inside the model folder`,
    );
  }
  return path.join(folder, file);
}

/** The tensors of one file that `wanted` asks for (all when undefined). */
async function readWanted(file: string, wanted?: ReadonlySet<string>): Promise<Map<string, FloatTensorData>> {
  if (!wanted) return (await readSafetensors(file)).tensors;
  const header = await readSafetensorsHeader(file);
  return (
    await readSafetensors(
      file,
      [...header.tensors.keys()].filter((n) => wanted.has(n)),
    )
  ).tensors;
}

/**
 * The weights of a folder as float32: `weightsFile` if given, else the sharded index
 * (model.safetensors.index.json), else model.safetensors. `wanted` limits reading to those
 * names (others, e.g. rotary caches or int buffers, are skipped unread); missing names are left
 * for the caller to report.
 */
export async function readModelWeights(
  folder: string,
  weightsFile?: string,
  wanted?: ReadonlySet<string>,
): Promise<Map<string, FloatTensorData>> {
  if (weightsFile) return readWanted(shardPath(folder, weightsFile, "weightsFile"), wanted);
  const indexFile = path.join(folder, "model.safetensors.index.json");
  const index = (await readJsonIfPresent(indexFile)) as { weight_map?: Record<string, string> } | null;
  if (index) {
    if (!index.weight_map || typeof index.weight_map !== "object") {
      throw new ModelFolderError(`${indexFile}: missing "weight_map"`);
    }
    const byFile = new Map<string, string[]>();
    for (const [name, file] of Object.entries(index.weight_map)) {
      if (wanted && !wanted.has(name)) continue;
      const list = byFile.get(file) ?? [];
      list.push(name);
      byFile.set(file, list);
    }
    const all = new Map<string, FloatTensorData>();
    for (const [file, names] of byFile) {
      const { tensors } = await readSafetensors(shardPath(folder, file, indexFile), names);
      for (const [name, t] of tensors) all.set(name, t);
    }
    return all;
  }
  const single = path.join(folder, "model.safetensors");
  if (
    !(await stat(single)
      .then((s) => s.isFile())
      .catch(() => false))
  ) {
    throw new ModelFolderError(`${folder}: no model.safetensors or model.safetensors.index.json`);
  }
  return readWanted(single, wanted);
}

/** Where a weight lives: which file, its stored dtype and shape (from headers only). */
async function weightIndex(
  folder: string,
): Promise<Map<string, { file: string; dtype: string; shape: number[] }>> {
  const index = new Map<string, { file: string; dtype: string; shape: number[] }>();
  const indexFile = path.join(folder, "model.safetensors.index.json");
  const sharded = (await readJsonIfPresent(indexFile)) as { weight_map?: Record<string, string> } | null;
  const files = sharded?.weight_map ? [...new Set(Object.values(sharded.weight_map))] : ["model.safetensors"];
  for (const file of files) {
    const full = shardPath(folder, file, indexFile);
    if (
      !(await stat(full)
        .then((s) => s.isFile())
        .catch(() => false))
    ) {
      throw new ModelFolderError(`${folder}: weights file ${file} is missing`);
    }
    const header = await readSafetensorsHeader(full);
    for (const [name, e] of header.tensors) index.set(name, { file, dtype: e.dtype, shape: e.shape });
  }
  return index;
}

export interface ModelFolderSummary {
  config: ModelConfig;
  eosTokenIds: number[];
  /** unique parameters (a tied head once) */
  numParameters: number;
  /** stored dtypes of the weights, e.g. ["BF16"] */
  weightDtypes: string[];
}

/**
 * Check a model folder without loading it: config.json is supported, and every tensor the
 * config implies is in the safetensors headers with the right shape and a float dtype. For
 * refusing a model when a job is created, and for listing models. Throws naming the problem.
 */
export async function inspectModelFolder(folder: string): Promise<ModelFolderSummary> {
  const config = await readModelConfig(folder);
  const index = await weightIndex(folder);
  let numParameters = 0;
  const dtypes = new Set<string>();
  for (const [name, shape] of expectedWeightShapes(config)) {
    const entry = index.get(name);
    if (!entry) throw new ModelFolderError(`${folder}: missing weight "${name}" (expected shape [${shape}])`);
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      throw new ModelFolderError(
        `${folder}: weight "${name}" in ${entry.file} has shape [${entry.shape}], config.json implies [${shape}]`,
      );
    }
    if (!["F32", "F16", "BF16"].includes(entry.dtype)) {
      throw new ModelFolderError(
        `${folder}: weight "${name}" has dtype ${entry.dtype}; only F32, F16 and BF16 are supported`,
      );
    }
    dtypes.add(entry.dtype);
    numParameters += shape.reduce((a, b) => a * b, 1);
  }
  return {
    config,
    eosTokenIds: await readEosTokenIds(folder, config),
    numParameters,
    weightDtypes: [...dtypes].sort(),
  };
}
