// Test helper: a model folder whose weights are a base folder's with a PEFT adapter merged in,
// W' = W + scaling·B·A for every adapted projection (plain loops, independent of the engine's
// LoRA code), plus the base folder's config, generation and tokenizer files.
import { copyFile, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { readSafetensors, writeSafetensors } from "../../worker/engine/hf/safetensors.js";
import { parseAdapterConfig } from "../../worker/engine/lora/adapter-io.js";

/** Returns how many projections were merged. */
export async function writeMergedModel(baseDir: string, adapterDir: string, outDir: string): Promise<number> {
  const settings = parseAdapterConfig(
    JSON.parse(await readFile(path.join(adapterDir, "adapter_config.json"), "utf8")),
  );
  const base = (await readSafetensors(path.join(baseDir, "model.safetensors"))).tensors;
  const lora = (await readSafetensors(path.join(adapterDir, "adapter_model.safetensors"))).tensors;
  let merged = 0;
  for (const [name, t] of base) {
    const module = name.replace(/\.weight$/, "");
    const a = lora.get(`base_model.model.${module}.lora_A.weight`);
    const b = lora.get(`base_model.model.${module}.lora_B.weight`);
    if (!a || !b) continue;
    const [out, inF] = t.shape;
    const r = a.shape[0];
    for (let o = 0; o < out; o++)
      for (let i = 0; i < inF; i++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += b.data[o * r + k] * a.data[k * inF + i];
        t.data[o * inF + i] += settings.scaling * s;
      }
    merged++;
  }
  await writeSafetensors(path.join(outDir, "model.safetensors"), base);
  for (const f of await readdir(baseDir)) {
    if (f.endsWith(".json")) await copyFile(path.join(baseDir, f), path.join(outDir, f));
  }
  return merged;
}
