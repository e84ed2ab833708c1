// Full fine-tuning output: a complete Hugging Face model folder. model.safetensors holds every
// base weight under its state-dict name (a tied LM head is omitted, as save_pretrained does),
// config.json is the source config with dtype float32, and the source folder's generation and
// tokenizer files are copied so the result loads (and chats) like the model it came from.

import { copyFile, mkdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { writeSafetensors } from "../hf/safetensors.js";

/** What saving needs of a model (CausalLM has this shape). */
export interface FullModelSource {
  /** the folder it was loaded from (its tokenizer and generation files are copied) */
  folder: string;
  rawConfig: Record<string, unknown>;
  weightNames(): string[];
  weight(name: string): { shape: number[]; data(): Promise<unknown> };
}

const COPIED_FILES = [
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
];

export async function saveFullModel(model: FullModelSource, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const name of model.weightNames()) {
    const t = model.weight(name);
    tensors.set(name, { shape: t.shape, data: (await t.data()) as Float32Array });
  }
  await writeSafetensors(path.join(dir, "model.safetensors"), tensors, { format: "pt" });
  const config = { ...model.rawConfig };
  if ("torch_dtype" in config) config.torch_dtype = "float32";
  else config.dtype = "float32";
  await writeFile(path.join(dir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  for (const file of COPIED_FILES) {
    const from = path.join(model.folder, file);
    const exists = await stat(from)
      .then((s) => s.isFile())
      .catch(() => false);
    if (exists) await copyFile(from, path.join(dir, file));
  }
}
