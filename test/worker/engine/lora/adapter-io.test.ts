import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import {
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from "../../../../worker/engine/hf/safetensors.js";
import { parseAdapterConfig, peftAdapterConfig } from "../../../../worker/engine/lora/adapter-io.js";
import { loadModel } from "../../../../worker/engine/model/load-model.js";

const fixtureDir = new URL("../../../fixtures/llama", import.meta.url).pathname;
const adapterDir = path.join(fixtureDir, "adapter");
const peftConfig = JSON.parse(readFileSync(path.join(adapterDir, "adapter_config.json"), "utf8"));
let tmp: string;

before(async () => {
  await tf.setBackend("cpu");
  tmp = await mkdtemp(path.join(tmpdir(), "adapter-io-"));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("PEFT adapter I/O", () => {
  test("load PEFT's adapter, save ours: same tensor names, shapes, dtypes, metadata and config keys", async () => {
    const m = await loadModel(fixtureDir, { adapterDir });
    const out = path.join(tmp, "ours");
    await m.saveAdapter(out, "llama");
    const theirs = await readSafetensorsHeader(path.join(adapterDir, "adapter_model.safetensors"));
    const ours = await readSafetensorsHeader(path.join(out, "adapter_model.safetensors"));
    assert.deepEqual(ours.metadata, theirs.metadata);
    assert.deepEqual([...ours.tensors.keys()].sort(), [...theirs.tensors.keys()].sort());
    for (const [name, entry] of theirs.tensors) {
      assert.equal(ours.tensors.get(name)?.dtype, entry.dtype, name);
      assert.deepEqual(ours.tensors.get(name)?.shape, entry.shape, name);
    }
    const ourConfig = JSON.parse(await readFile(path.join(out, "adapter_config.json"), "utf8"));
    assert.deepEqual(Object.keys(ourConfig).sort(), Object.keys(peftConfig).sort());
    for (const key of [
      "r",
      "lora_alpha",
      "lora_dropout",
      "peft_type",
      "task_type",
      "bias",
      "use_rslora",
      "use_dora",
      "base_model_name_or_path",
    ]) {
      assert.deepEqual(ourConfig[key], peftConfig[key], key);
    }
    assert.deepEqual([...ourConfig.target_modules].sort(), [...peftConfig.target_modules].sort());
    // and the values survive the trip
    const a = (await readSafetensors(path.join(adapterDir, "adapter_model.safetensors"))).tensors;
    const b = (await readSafetensors(path.join(out, "adapter_model.safetensors"))).tensors;
    for (const [name, t] of a) assert.deepEqual(b.get(name)?.data, t.data, name);
    m.dispose();
  });

  test("a fresh adapter saves with PEFT's layout too (B all zero)", async () => {
    const m = await loadModel(fixtureDir, {
      lora: { r: 8, alpha: 16, dropout: 0.05, targetModules: ["q_proj", "down_proj"] },
    });
    const out = path.join(tmp, "fresh");
    await m.saveAdapter(out);
    const { tensors } = await readSafetensors(path.join(out, "adapter_model.safetensors"));
    assert.deepEqual(
      tensors.get("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight")?.shape,
      [8, 128],
    );
    assert.deepEqual(
      tensors.get("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight")?.shape,
      [64, 8],
    );
    assert.equal(tensors.size, 2 * 2 * 2);
    const cfg = JSON.parse(await readFile(path.join(out, "adapter_config.json"), "utf8"));
    assert.deepEqual(
      [cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.target_modules],
      [8, 16, 0.05, ["q_proj", "down_proj"]],
    );
    assert.equal(cfg.base_model_name_or_path, "llama");
    m.dispose();
  });

  test("config parsing: scaling, rsLoRA, regex targets; refuses DoRA, biases, patterns", () => {
    assert.equal(parseAdapterConfig(peftConfig).scaling, 2);
    assert.equal(parseAdapterConfig({ ...peftConfig, use_rslora: true }).scaling, 4);
    assert.deepEqual(
      parseAdapterConfig({ ...peftConfig, target_modules: ".*\\.(q_proj|v_proj)" }).targetModules,
      ["q_proj", "v_proj"],
    );
    assert.deepEqual(
      parseAdapterConfig({ ...peftConfig, target_modules: "all-linear" }).targetModules.length,
      7,
    );
    const refused: [Record<string, unknown>, RegExp][] = [
      [{ use_dora: true }, /use_dora/],
      [{ bias: "all" }, /bias/],
      [{ rank_pattern: { q_proj: 8 } }, /rank_pattern/],
      [{ modules_to_save: ["lm_head"] }, /modules_to_save/],
      [{ peft_type: "IA3" }, /IA3/],
      [{ target_modules: ["c_attn"] }, /c_attn/],
    ];
    for (const [patch, message] of refused)
      assert.throws(() => parseAdapterConfig({ ...peftConfig, ...patch }), message);
    assert.deepEqual(Object.keys(peftAdapterConfig(parseAdapterConfig(peftConfig), "x")).length, 41);
  });

  test("a tensor missing from the adapter file, or one of the wrong shape, is an error naming it", async () => {
    const dir = path.join(tmp, "broken");
    await cp(adapterDir, dir, { recursive: true });
    const { tensors } = await readSafetensors(path.join(dir, "adapter_model.safetensors"));
    const victim = "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight";
    tensors.delete(victim);
    await writeSafetensors(path.join(dir, "adapter_model.safetensors"), tensors);
    await assert.rejects(
      loadModel(fixtureDir, { adapterDir: dir }),
      new RegExp(`missing tensor "${victim.replace(/\./g, "\\.")}"`),
    );
    await writeFile(path.join(dir, "adapter_config.json"), JSON.stringify({ ...peftConfig, r: 8 }));
    await assert.rejects(
      loadModel(fixtureDir, { adapterDir: dir }),
      /has shape \[4,64\], the model needs \[8,64\]/,
    );
  });
});
