// The adapter download format: a plain tar that `tar -xf` unpacks, and that reads back byte for byte.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { archiveFolder, readTarArchive, tarArchive } from "../../../src/store/models/adapter-archive.js";

describe("adapter archive", () => {
  const dir = mkdtempSync(join(tmpdir(), "adapter-archive-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const config = Buffer.from('{"peft_type":"LORA","r":8}');
  const weights = Uint8Array.from({ length: 1300 }, (_, i) => i % 251);

  it("reads back what it wrote, in order, byte for byte", async () => {
    const bytes = await tarArchive([
      { name: "adapter_config.json", data: config },
      { name: "adapter_model.safetensors", data: weights },
      { name: "empty", data: new Uint8Array(0) },
    ]);
    assert.equal(bytes.length % 512, 0);
    const entries = await readTarArchive(bytes);
    assert.deepEqual(
      entries.map((e) => [e.name, e.data.length]),
      [
        ["adapter_config.json", config.length],
        ["adapter_model.safetensors", weights.length],
        ["empty", 0],
      ],
    );
    assert.deepEqual(new Uint8Array(entries[1].data), weights);
  });

  it("archives a folder sorted by name, and tar -xf unpacks it", async () => {
    const src = join(dir, "src");
    const out = join(dir, "out");
    mkdirSync(src);
    mkdirSync(out);
    writeFileSync(join(src, "adapter_model.safetensors"), weights);
    writeFileSync(join(src, "adapter_config.json"), config);
    const bytes = await archiveFolder(src);
    assert.deepEqual(
      (await readTarArchive(bytes)).map((e) => e.name),
      ["adapter_config.json", "adapter_model.safetensors"],
    );
    writeFileSync(join(dir, "a.tar"), bytes);
    execFileSync("tar", ["-xf", join(dir, "a.tar"), "-C", out]);
    assert.deepEqual(readFileSync(join(out, "adapter_config.json")), config);
    assert.deepEqual(new Uint8Array(readFileSync(join(out, "adapter_model.safetensors"))), weights);
  });

  it("reads a tar made by the system's tar, and refuses a truncated one", async () => {
    execFileSync("tar", ["-cf", join(dir, "sys.tar"), "-C", join(dir, "src"), "adapter_config.json"]);
    const entries = await readTarArchive(readFileSync(join(dir, "sys.tar")));
    assert.deepEqual(
      entries.map((e) => e.name),
      ["adapter_config.json"],
    );
    const bytes = await tarArchive([{ name: "adapter_model.safetensors", data: weights }]);
    await assert.rejects(readTarArchive(bytes.subarray(0, 1000)), /Unexpected end of data/);
  });
});
