// LoRA adapters in PEFT's on-disk layout, so a PEFT user (PeftModel.from_pretrained) or vLLM
// loads ours unchanged and we load theirs with the same code:
//   adapter_config.json        PEFT 0.21's LoraConfig keys (all of them, as save_pretrained writes)
//   adapter_model.safetensors  base_model.model.<module>.lora_A.weight [r, in] and
//                              ….lora_B.weight [out, r], float32, metadata {"format": "pt"}

import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { readSafetensors, writeSafetensors } from "../hf/safetensors.js";
import { uniqueVariableName } from "../model/unique-variable-name.js";
import { adapterStateDict, type LoraAdapter, type LoraPair, peftTensorName } from "./lora-adapter.js";
import type { LoraSettings } from "./lora-config.js";
import type { LoraLinear } from "./lora-layer.js";
import { LORA_TARGET_MODULES, type LoraTargetModule } from "./lora-targets.js";

export const ADAPTER_CONFIG_FILE = "adapter_config.json";
export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";
export const PEFT_VERSION = "0.21.0";

/** adapter_config.json exactly as PEFT 0.21 writes a LoraConfig (keys sorted like json.dumps(sort_keys)). */
export function peftAdapterConfig(settings: LoraSettings, baseModelName: string): Record<string, unknown> {
  const config: Record<string, unknown> = {
    alora_invocation_tokens: null,
    alpha_pattern: {},
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: baseModelName,
    bias: "none",
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    kasa_config: null,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: settings.alpha,
    lora_bias: false,
    lora_dropout: settings.dropout,
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: "megatron.core",
    modules_to_save: null,
    monteclora_config: null,
    peft_type: "LORA",
    peft_version: PEFT_VERSION,
    qalora_group_size: 16,
    r: settings.r,
    rank_pattern: {},
    revision: null,
    target_modules: [...settings.targetModules],
    target_parameters: null,
    task_type: "CAUSAL_LM",
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: settings.useRslora,
    velora_config: null,
  };
  return config;
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === "object" && Object.keys(v as object).length === 0);
}

/** Which of our seven projection kinds a PEFT `target_modules` value selects. */
function targetKinds(target: unknown, file: string): LoraTargetModule[] {
  if (typeof target === "string") {
    // PEFT: a string is a regex matched in full against module paths; "all-linear" is a keyword
    if (target === "all-linear") return [...LORA_TARGET_MODULES];
    const re = new RegExp(`^(?:${target})$`);
    const kinds = LORA_TARGET_MODULES.filter((m) =>
      [`model.layers.0.self_attn.${m}`, `model.layers.0.mlp.${m}`].some((p) => re.test(p)),
    );
    if (kinds.length === 0)
      throw new Error(`${file}: target_modules regex ${JSON.stringify(target)} selects no projection`);
    return kinds;
  }
  if (!Array.isArray(target) || target.length === 0)
    throw new Error(`${file}: target_modules must be a list or a regex`);
  for (const m of target) {
    if (!LORA_TARGET_MODULES.includes(m)) {
      throw new Error(
        `${file}: target module ${JSON.stringify(m)} is not supported (supported: ${LORA_TARGET_MODULES.join(", ")})`,
      );
    }
  }
  return target as LoraTargetModule[];
}

/** Parse a PEFT adapter_config.json into LoRA settings; refuses features we do not compute. */
export function parseAdapterConfig(raw: Record<string, unknown>, file = ADAPTER_CONFIG_FILE): LoraSettings {
  if (raw.peft_type !== "LORA")
    throw new Error(`${file}: peft_type ${JSON.stringify(raw.peft_type)} is not supported (only LORA)`);
  const refuse = (key: string, ok: boolean) => {
    if (!ok) throw new Error(`${file}: ${key} = ${JSON.stringify(raw[key])} is not supported`);
  };
  refuse("use_dora", raw.use_dora !== true);
  refuse("bias", raw.bias === undefined || raw.bias === "none");
  refuse("fan_in_fan_out", raw.fan_in_fan_out !== true);
  refuse("rank_pattern", isEmpty(raw.rank_pattern));
  refuse("alpha_pattern", isEmpty(raw.alpha_pattern));
  refuse("modules_to_save", isEmpty(raw.modules_to_save));
  refuse("layers_to_transform", isEmpty(raw.layers_to_transform));
  refuse("lora_bias", raw.lora_bias !== true);
  const r = raw.r;
  const alpha = raw.lora_alpha ?? r;
  if (!Number.isInteger(r) || (r as number) <= 0)
    throw new Error(`${file}: r must be a positive integer, got ${JSON.stringify(r)}`);
  if (typeof alpha !== "number") throw new Error(`${file}: lora_alpha must be a number`);
  const useRslora = raw.use_rslora === true;
  return {
    r: r as number,
    alpha,
    dropout: typeof raw.lora_dropout === "number" ? raw.lora_dropout : 0,
    targetModules: targetKinds(raw.target_modules, file),
    useRslora,
    scaling: useRslora ? alpha / Math.sqrt(r as number) : alpha / (r as number),
  };
}

/** A PEFT adapter folder's parsed settings and its tensors (by PEFT name), not yet checked against a model. */
export async function readAdapterFolder(dir: string) {
  const configFile = path.join(dir, ADAPTER_CONFIG_FILE);
  const raw = JSON.parse(await readFile(configFile, "utf8")) as Record<string, unknown>;
  const settings = parseAdapterConfig(raw, configFile);
  const weightsFile = path.join(dir, ADAPTER_WEIGHTS_FILE);
  const { tensors } = await readSafetensors(weightsFile);
  return { settings, weightsFile, tensors };
}

/** The tensor each adapted projection needs, by PEFT name, in projection order (A then B). */
function expectedTensors(projections: readonly LoraLinear[], settings: LoraSettings) {
  const expected = new Map<string, { module: string; shape: [number, number] }>();
  for (const p of projections) {
    if (!settings.targetModules.includes(p.kind)) continue;
    const [out, inF] = p.weight.shape;
    expected.set(peftTensorName(p.name, "A"), { module: p.name, shape: [settings.r, inF] });
    expected.set(peftTensorName(p.name, "B"), { module: p.name, shape: [out, settings.r] });
  }
  return expected;
}

/** A variable owning a copy of `data` (the staging tensor is freed). */
function adapterVariable(data: Float32Array, shape: [number, number], name: string, trainable: boolean) {
  const staging = tf.tensor2d(data, shape);
  const variable = tf.variable(staging, trainable, uniqueVariableName(name));
  staging.dispose();
  return variable;
}

/**
 * Read a PEFT adapter folder (ours or PEFT's) for a model's projections: every tensor must match
 * an adapted projection and every adapted projection its two tensors, shapes included. Nothing is
 * attached to any model; `trainable` makes the pairs trainable variables (to train on).
 */
export async function readAdapter(
  projections: readonly LoraLinear[],
  dir: string,
  options: { name: string; trainable: boolean },
): Promise<LoraAdapter> {
  const { settings, weightsFile, tensors } = await readAdapterFolder(dir);
  const expected = expectedTensors(projections, settings);
  for (const name of tensors.keys()) {
    if (!expected.has(name))
      throw new Error(`${weightsFile}: tensor "${name}" does not belong to a LoRA target of this model`);
  }
  for (const [name, want] of expected) {
    const t = tensors.get(name);
    if (!t) throw new Error(`${weightsFile}: missing tensor "${name}"`);
    if (t.shape.length !== 2 || t.shape[0] !== want.shape[0] || t.shape[1] !== want.shape[1])
      throw new Error(
        `${weightsFile}: tensor "${name}" has shape [${t.shape}], the model needs [${want.shape}]`,
      );
  }
  const pairs = new Map<string, LoraPair>();
  for (const [name, want] of expected) {
    if (pairs.has(want.module)) continue;
    const nameB = peftTensorName(want.module, "B");
    const a = tensors.get(name)!;
    const b = tensors.get(nameB)!;
    pairs.set(want.module, {
      a: adapterVariable(a.data, a.shape as [number, number], name, options.trainable),
      b: adapterVariable(b.data, b.shape as [number, number], nameB, options.trainable),
    });
  }
  tensors.clear();
  return { name: options.name, settings, pairs };
}

/** Write an adapter in PEFT's layout. */
export async function saveAdapter(adapter: LoraAdapter, dir: string, baseModelName: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, variable] of adapterStateDict(adapter)) {
    tensors.set(name, { shape: variable.shape, data: (await variable.data()) as Float32Array });
  }
  await writeSafetensors(path.join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: "pt" });
  await writeFile(
    path.join(dir, ADAPTER_CONFIG_FILE),
    `${JSON.stringify(peftAdapterConfig(adapter.settings, baseModelName), null, 2)}\n`,
  );
}
