// A model folder into a CausalLM, as from_pretrained reads one: config.json (either layout), the
// weights widened to float32, and optionally a new LoRA adapter, an existing PEFT adapter, or every
// weight trainable (full fine-tuning).

import { readFile } from "node:fs/promises";
import path from "node:path";
import { expectedWeightShapes } from "../hf/checkpoint-layout.js";
import { parseModelConfig } from "../hf/config.js";
import { readModelWeights } from "../hf/model-folder.js";
import type { LoraOptions } from "../lora/lora-config.js";
import { CausalLM } from "./causal-lm.js";

export interface LoadModelOptions {
  /** default "config.json" (e.g. "config.legacy.json" to load the transformers-4 layout) */
  configFile?: string;
  /** default: model.safetensors.index.json, else model.safetensors */
  weightsFile?: string;
  /** new LoRA adapter (B = 0); ignored when adapterDir is given */
  lora?: LoraOptions | null;
  /** load an existing PEFT adapter (its adapter_config.json decides rank, alpha, targets) */
  adapterDir?: string;
  /** every base weight becomes a trainable variable */
  fullFinetune?: boolean;
  /** seeds LoRA initialisation and the dropout stream (default 0) */
  seed?: number;
}

export async function loadModel(folder: string, options: LoadModelOptions = {}): Promise<CausalLM> {
  const configPath = path.join(folder, options.configFile ?? "config.json");
  const rawConfig = JSON.parse(await readFile(configPath, "utf8")) as Record<string, unknown>;
  const config = parseModelConfig(rawConfig);
  const weights = await readModelWeights(
    folder,
    options.weightsFile,
    new Set(expectedWeightShapes(config).keys()),
  );
  const model = new CausalLM(config, weights, {
    folder,
    rawConfig,
    fullFinetune: options.fullFinetune,
    seed: options.seed,
  });
  weights.clear();
  if (options.adapterDir) await model.loadAdapter(options.adapterDir);
  else if (options.lora) model.attachLora(options.lora);
  return model;
}
