// The adapter download format: one uncompressed POSIX tar (ustar) holding the files the engine
// wrote for a tuned model or checkpoint: `adapter_config.json` + `adapter_model.safetensors`
// (PEFT layout; `model.safetensors` + `config.json` for a full fine-tune). Tar because every
// system unpacks it (`tar xf`) and safetensors barely compress. Flat names only. Written and
// read by tar-stream.
//
//   const bytes = await tarArchive([{ name: "adapter_config.json", data }]);
//   for (const { name, data } of await readTarArchive(bytes)) …
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { extract, pack } from "tar-stream";

export interface ArchiveEntry {
  name: string;
  data: Uint8Array;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** One tar of `entries`, in order, as regular files (mode 0644) stamped `mtime`. */
export async function tarArchive(entries: ArchiveEntry[], mtime = new Date()): Promise<Uint8Array> {
  const archive = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of archive) chunks.push(chunk as Buffer);
  })();
  for (const { name, data } of entries) {
    await new Promise<void>((resolve, reject) => {
      archive.entry({ name, size: data.byteLength, mode: 0o644, mtime }, asBuffer(data), (err) =>
        err ? reject(err) : resolve(),
      );
    });
  }
  archive.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** Every regular file of a tar (tarArchive's, or any other ustar/pax/GNU tar), in order. */
export async function readTarArchive(bytes: Uint8Array): Promise<ArchiveEntry[]> {
  const reader = extract();
  const out: ArchiveEntry[] = [];
  const read = (async () => {
    for await (const entry of reader) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      if (entry.header.type === "file") out.push({ name: entry.header.name, data: Buffer.concat(chunks) });
    }
  })();
  reader.end(asBuffer(bytes));
  await read;
  return out;
}

/** Archives every file of a folder the engine wrote (saveAdapter / saveFullModel), sorted by name. */
export async function archiveFolder(dir: string): Promise<Uint8Array> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
  const entries: ArchiveEntry[] = [];
  for (const name of names) entries.push({ name, data: await readFile(join(dir, name)) });
  return tarArchive(entries);
}
