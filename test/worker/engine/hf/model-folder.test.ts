import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  inspectModelFolder,
  isValidModelId,
  readEosTokenIds,
  readGenerationConfig,
  readModelConfig,
  readModelWeights,
  resolveModelFolder,
} from "../../../../worker/engine/hf/model-folder.js";
import { readSafetensors, writeSafetensors } from "../../../../worker/engine/hf/safetensors.js";

const fixtureDir = new URL("../../../fixtures/llama", import.meta.url).pathname;
let root: string;
let models: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), "model-folder-test-"));
  models = path.join(root, "models");
  await mkdir(path.join(models, "org", "small"), { recursive: true });
  await writeFile(path.join(models, "org", "small", "config.json"), "{}");
  await mkdir(path.join(root, "outside"));
  await writeFile(path.join(root, "outside", "config.json"), "{}");
  await symlink(path.join(root, "outside"), path.join(models, "escape"));
  await symlink(path.join(models, "org", "small"), path.join(models, "alias"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("model folders", () => {
  test("ids: nested names allowed; empty, '..', '.', absolute, backslash refused", () => {
    assert.ok(isValidModelId("org/small"));
    assert.ok(isValidModelId("Llama-3.2-1B_x"));
    for (const bad of ["", "..", "../x", "org/../x", "/etc", "a//b", "./a", "a\\b", "a b"])
      assert.equal(isValidModelId(bad), false, bad);
  });

  test("resolves a nested id to its folder", async () => {
    assert.equal(
      await resolveModelFolder(models, "org/small"),
      path.join(await import("node:fs/promises").then((f) => f.realpath(models)), "org", "small"),
    );
  });

  test("a symlink inside MODELS_DIR pointing inside is fine; one pointing out is refused", async () => {
    assert.ok((await resolveModelFolder(models, "alias")).endsWith(path.join("org", "small")));
    await assert.rejects(resolveModelFolder(models, "escape"), /outside MODELS_DIR/);
  });

  test("traversal and absolute ids are refused before touching the disk", async () => {
    await assert.rejects(resolveModelFolder(models, "../outside"), /invalid model id/);
    await assert.rejects(resolveModelFolder(models, path.join(root, "outside")), /invalid model id/);
  });

  test("missing model or missing config.json", async () => {
    await assert.rejects(resolveModelFolder(models, "nope"), /not found/);
    await assert.rejects(resolveModelFolder(models, "org"), /no config.json/);
  });

  test("sharded weights via model.safetensors.index.json equal the single file", async () => {
    const dir = path.join(root, "sharded");
    await mkdir(dir);
    const all = (await readSafetensors(path.join(fixtureDir, "model.safetensors"))).tensors;
    const names = [...all.keys()];
    const half = Math.floor(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(path.join(dir, file), new Map(shard.map((n) => [n, all.get(n)!])));
      for (const n of shard) weightMap[n] = file;
    }
    await writeFile(
      path.join(dir, "model.safetensors.index.json"),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    const loaded = await readModelWeights(dir);
    assert.deepEqual([...loaded.keys()].sort(), [...names].sort());
    for (const n of names) assert.deepEqual(loaded.get(n)?.data, all.get(n)?.data);
  });

  test("`wanted` reads only the named tensors and skips others unread, even of unsupported dtypes", async () => {
    const dir = path.join(root, "extra");
    await mkdir(dir);
    const header = JSON.stringify({
      "model.norm.weight": { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      "rotary.buffer": { dtype: "I64", shape: [1], data_offsets: [8, 16] },
    });
    const padded = header + " ".repeat((8 - (header.length % 8)) % 8);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(padded.length));
    const data = Buffer.from(new Float32Array([1.5, -2]).buffer);
    await writeFile(
      path.join(dir, "model.safetensors"),
      Buffer.concat([len, Buffer.from(padded), data, Buffer.alloc(8)]),
    );
    await assert.rejects(readModelWeights(dir), /I64/);
    const w = await readModelWeights(dir, undefined, new Set(["model.norm.weight", "lm_head.weight"]));
    assert.deepEqual([...w.keys()], ["model.norm.weight"]);
    assert.deepEqual([...(w.get("model.norm.weight")?.data ?? [])], [1.5, -2]);
  });

  test("an index naming a shard outside the folder is refused", async () => {
    const dir = path.join(root, "badindex");
    await mkdir(dir);
    await writeFile(
      path.join(dir, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { w: "../x.safetensors" } }),
    );
    await assert.rejects(readModelWeights(dir), /inside the model folder/);
  });

  test("no weights at all is a clear error", async () => {
    await assert.rejects(readModelWeights(path.join(models, "org", "small")), /no model.safetensors/);
  });

  test("generation_config eos ids (single or list) win over config.json's", async () => {
    const dir = path.join(root, "gen");
    await mkdir(dir);
    await copyFile(path.join(fixtureDir, "config.json"), path.join(dir, "config.json"));
    const config = await readModelConfig(dir);
    assert.deepEqual(await readEosTokenIds(dir, config), [2], "no generation_config: config.json's eos");
    await writeFile(
      path.join(dir, "generation_config.json"),
      JSON.stringify({ eos_token_id: [7, 9], pad_token_id: 0 }),
    );
    assert.deepEqual(await readEosTokenIds(dir, config), [7, 9]);
    assert.deepEqual(await readGenerationConfig(dir), {
      eosTokenIds: [7, 9],
      bosTokenId: null,
      padTokenId: 0,
    });
    assert.deepEqual((await readGenerationConfig(fixtureDir)).eosTokenIds, [2]);
  });

  test("inspectModelFolder: headers only; counts parameters, names a missing or misshapen weight", async () => {
    const summary = await inspectModelFolder(fixtureDir);
    assert.equal(summary.numParameters, 123200);
    assert.deepEqual(summary.weightDtypes, ["F32"]);
    assert.deepEqual(summary.eosTokenIds, [2]);
    const qwen = await inspectModelFolder(new URL("../../../fixtures/qwen2", import.meta.url).pathname);
    assert.equal(qwen.numParameters, 98880, "tied head counted once");
    const dir = path.join(root, "inspect");
    await mkdir(dir);
    await copyFile(path.join(fixtureDir, "config.json"), path.join(dir, "config.json"));
    await assert.rejects(inspectModelFolder(dir), /model.safetensors is missing/);
    const { tensors } = await readSafetensors(path.join(fixtureDir, "model.safetensors"));
    tensors.delete("model.layers.1.mlp.up_proj.weight");
    await writeSafetensors(path.join(dir, "model.safetensors"), tensors);
    await assert.rejects(inspectModelFolder(dir), /missing weight "model\.layers\.1\.mlp\.up_proj\.weight"/);
    await writeFile(
      path.join(dir, "config.json"),
      JSON.stringify({
        ...JSON.parse(await readFile(path.join(fixtureDir, "config.json"), "utf8")),
        intermediate_size: 256,
      }),
    );
    await assert.rejects(inspectModelFolder(dir), /has shape \[128,64\], config.json implies \[256,64\]/);
  });
});
