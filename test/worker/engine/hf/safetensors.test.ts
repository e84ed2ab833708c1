import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  readSafetensors,
  readSafetensorsHeader,
  SafetensorsError,
  writeSafetensors,
} from "../../../../worker/engine/hf/safetensors.js";

const fixtureDir = new URL("../../../fixtures/llama", import.meta.url).pathname;
let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "safetensors-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A file with a hand-written header and raw data bytes. */
async function rawFile(
  name: string,
  header: unknown,
  data: Uint8Array,
  headerLength?: number,
): Promise<string> {
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerLength ?? Buffer.byteLength(json)));
  const file = path.join(dir, name);
  await writeFile(file, Buffer.concat([len, Buffer.from(json), data]));
  return file;
}

describe("safetensors", () => {
  test("write then read round-trips names, shapes, values and metadata", async () => {
    const file = path.join(dir, "rt.safetensors");
    const a = Float32Array.from([1, -2.5, 3e-8, 4]);
    const b = Float32Array.from([0.125]);
    await writeSafetensors(
      file,
      { "z.weight": { shape: [2, 2], data: a }, "a.bias": { shape: [1], data: b } },
      { format: "pt" },
    );
    const { metadata, tensors } = await readSafetensors(file);
    assert.deepEqual(metadata, { format: "pt" });
    assert.deepEqual([...tensors.keys()], ["a.bias", "z.weight"]);
    assert.deepEqual(tensors.get("z.weight")?.shape, [2, 2]);
    assert.deepEqual([...(tensors.get("z.weight")?.data ?? [])], [...a]);
    const bytes = await readFile(file);
    assert.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0, "header padded to 8 bytes");
  });

  test("reads only the tensors asked for", async () => {
    const { tensors } = await readSafetensors(path.join(fixtureDir, "model.safetensors"), [
      "model.norm.weight",
    ]);
    assert.deepEqual([...tensors.keys()], ["model.norm.weight"]);
    assert.equal(tensors.get("model.norm.weight")?.data.length, 64);
  });

  test("BF16 and F16 are widened to float32 exactly", async () => {
    // bf16 0x3FC0 = 1.5, 0xC000 = -2; f16 0x3C00 = 1, 0xC100 = -2.5, 0x0001 = 2^-24, 0x7C00 = inf
    const bf = new Uint16Array([0x3fc0, 0xc000]);
    const f16 = new Uint16Array([0x3c00, 0xc100, 0x0001, 0x7c00]);
    const data = new Uint8Array([...new Uint8Array(bf.buffer), ...new Uint8Array(f16.buffer)]);
    const file = await rawFile(
      "half.safetensors",
      {
        b: { dtype: "BF16", shape: [2], data_offsets: [0, 4] },
        h: { dtype: "F16", shape: [2, 2], data_offsets: [4, 12] },
      },
      data,
    );
    const { tensors } = await readSafetensors(file);
    assert.deepEqual([...(tensors.get("b")?.data ?? [])], [1.5, -2]);
    assert.deepEqual([...(tensors.get("h")?.data ?? [])], [1, -2.5, 2 ** -24, Number.POSITIVE_INFINITY]);
    assert.equal(tensors.get("h")?.dtype, "F16");
  });

  test("the fixture's bf16 file matches its float32 file to bf16 precision", async () => {
    const f32 = (await readSafetensors(path.join(fixtureDir, "model.safetensors"))).tensors;
    const bf16 = (await readSafetensors(path.join(fixtureDir, "model.bf16.safetensors"))).tensors;
    assert.deepEqual([...bf16.keys()].sort(), [...f32.keys()].sort());
    for (const [name, t] of bf16) {
      assert.equal(t.dtype, "BF16");
      const ref = f32.get(name)?.data ?? new Float32Array();
      for (let i = 0; i < ref.length; i++)
        assert.ok(Math.abs(t.data[i] - ref[i]) <= Math.abs(ref[i]) * 2 ** -8 + 1e-30, name);
    }
  });

  const corrupt: [string, () => Promise<string>, RegExp][] = [
    [
      "too short",
      async () => {
        const f = path.join(dir, "short.safetensors");
        await writeFile(f, Buffer.from([1, 2]));
        return f;
      },
      /too short/,
    ],
    [
      "header longer than the file",
      () => rawFile("long.safetensors", {}, new Uint8Array(0), 1 << 20),
      /header length/,
    ],
    [
      "header not JSON",
      async () => {
        const f = path.join(dir, "nojson.safetensors");
        const len = Buffer.alloc(8);
        len.writeBigUInt64LE(8n);
        await writeFile(f, Buffer.concat([len, Buffer.from("{nope!!}")]));
        return f;
      },
      /not valid JSON/,
    ],
    [
      "offsets past the data",
      () =>
        rawFile(
          "past.safetensors",
          { t: { dtype: "F32", shape: [4], data_offsets: [0, 16] } },
          new Uint8Array(8),
        ),
      /outside/,
    ],
    [
      "shape disagreeing with offsets",
      () =>
        rawFile(
          "shape.safetensors",
          { t: { dtype: "F32", shape: [3], data_offsets: [0, 8] } },
          new Uint8Array(8),
        ),
      /needs 12 bytes/,
    ],
    [
      "unsupported dtype",
      () =>
        rawFile(
          "i64.safetensors",
          { t: { dtype: "I64", shape: [1], data_offsets: [0, 8] } },
          new Uint8Array(8),
        ),
      /I64/,
    ],
  ];
  for (const [what, make, message] of corrupt) {
    test(`corrupt file (${what}) is an error naming the file`, async () => {
      const file = await make();
      await assert.rejects(
        readSafetensors(file),
        (err: Error) =>
          err instanceof SafetensorsError && err.message.startsWith(file) && message.test(err.message),
      );
    });
  }

  test("header reader gives absolute data start and entries", async () => {
    const h = await readSafetensorsHeader(path.join(fixtureDir, "adapter/adapter_model.safetensors"));
    assert.equal(h.tensors.size, 28);
    assert.equal(h.dataStart % 8, 0);
    assert.deepEqual(
      h.tensors.get("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")?.shape,
      [4, 64],
    );
  });
});
