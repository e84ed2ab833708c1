// LoRA adapters folded into weights, for fine-tuning a fine-tuned model and for merged downloads:
//
//   await mergeAdapterIntoBase(model, dir)   W ← W + scaling·B·A on every adapted projection
//                                             (PEFT's merge_and_unload), in memory; the model
//                                             then trains a fresh adapter on top, or is saved
//                                             whole (saveFullModel)
//   await composeAdapterFolders(first, second, out, baseName)
//                                             one PEFT adapter equal to `first` then `second`
//                                             stacked: rank r1 + r2, A = [A1; A2],
//                                             B = [s1·B1, s2·B2], lora_alpha = rank (scaling 1)
//
// A composed adapter loads on the base model with PeftModel.from_pretrained unchanged and gives
// W + s1·B1·A1 + s2·B2·A2, which is what merging the first and training the second on top means.

import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { writeSafetensors } from "../hf/safetensors.js";
import type { CausalLM } from "../model/causal-lm.js";
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  peftAdapterConfig,
  readAdapterFolder,
} from "./adapter-io.js";
import { peftTensorName } from "./lora-adapter.js";
import type { LoraSettings } from "./lora-config.js";
import { LORA_TARGET_MODULES } from "./lora-targets.js";

/** Merge the PEFT adapter in `dir` into the model's base weights (in memory). */
export async function mergeAdapterIntoBase(model: CausalLM, dir: string): Promise<LoraSettings> {
  const { settings, weightsFile, tensors } = await readAdapterFolder(dir);
  for (const p of model.projections()) {
    if (!settings.targetModules.includes(p.kind)) continue;
    const a = tensors.get(peftTensorName(p.name, "A"));
    const b = tensors.get(peftTensorName(p.name, "B"));
    if (!a || !b) throw new Error(`${weightsFile}: missing the LoRA pair of ${p.name}`);
    const merged = tf.tidy(() => {
      const delta = tf.matMul(
        tf.tensor2d(b.data, b.shape as [number, number]),
        tf.tensor2d(a.data, a.shape as [number, number]),
      );
      return tf.add(p.weight, tf.mul(delta, settings.scaling)) as tf.Tensor2D;
    });
    model.replaceProjectionWeight(p.name, merged);
  }
  return settings;
}

type Tensors = Awaited<ReturnType<typeof readAdapterFolder>>["tensors"];

/** Write to `out` the adapter equal to `first` followed by `second` (see the header). */
export async function composeAdapterFolders(
  first: string,
  second: string,
  out: string,
  baseModelName: string,
): Promise<LoraSettings> {
  const x = await readAdapterFolder(first);
  const y = await readAdapterFolder(second);
  const r = x.settings.r + y.settings.r;
  const targetModules = LORA_TARGET_MODULES.filter(
    (m) => x.settings.targetModules.includes(m) || y.settings.targetModules.includes(m),
  );
  const modules = new Set<string>();
  for (const t of [x.tensors, y.tensors])
    for (const name of t.keys())
      modules.add(name.replace(/^base_model\.model\./, "").replace(/\.lora_[AB]\.weight$/, ""));
  const part = (t: Tensors, module: string) => ({
    a: t.get(peftTensorName(module, "A")),
    b: t.get(peftTensorName(module, "B")),
  });
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const module of modules) {
    const px = part(x.tensors, module);
    const py = part(y.tensors, module);
    const inF = (px.a ?? py.a)!.shape[1]!;
    const outF = (px.b ?? py.b)!.shape[0]!;
    const a = new Float32Array(r * inF);
    const b = new Float32Array(outF * r);
    const place = (p: typeof px, rank: number, offset: number, scaling: number) => {
      if (!p.a || !p.b) return;
      a.set(p.a.data, offset * inF);
      for (let o = 0; o < outF; o++)
        for (let k = 0; k < rank; k++) b[o * r + offset + k] = scaling * p.b.data[o * rank + k]!;
    };
    place(px, x.settings.r, 0, x.settings.scaling);
    place(py, y.settings.r, x.settings.r, y.settings.scaling);
    tensors.set(peftTensorName(module, "A"), { shape: [r, inF], data: a });
    tensors.set(peftTensorName(module, "B"), { shape: [outF, r], data: b });
  }
  const settings: LoraSettings = { r, alpha: r, dropout: 0, targetModules, useRslora: false, scaling: 1 };
  await mkdir(out, { recursive: true });
  await writeSafetensors(path.join(out, ADAPTER_WEIGHTS_FILE), tensors, { format: "pt" });
  await writeFile(
    path.join(out, ADAPTER_CONFIG_FILE),
    `${JSON.stringify(peftAdapterConfig(settings, baseModelName), null, 2)}\n`,
  );
  return settings;
}
