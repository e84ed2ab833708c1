// The adapter download format: one uncompressed POSIX tar (ustar) holding the files the engine
// wrote for a tuned model or checkpoint: `adapter_config.json` + `adapter_model.safetensors`
// (PEFT layout; `model.safetensors` + `config.json` for a full fine-tune). Tar because every
// system unpacks it (`tar xf`) and safetensors barely compress. Flat names only.
//
//   const bytes = tarArchive([{ name: "adapter_config.json", data }]);
//   for (const { name, data } of readTarArchive(bytes)) …
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

export interface ArchiveEntry {
  name: string;
  data: Uint8Array;
}

const BLOCK = 512;

function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  header.write(`${value.toString(8).padStart(length - 1, "0")}\0`, offset, length, "ascii");
}

function entryHeader(name: string, size: number, mtime: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name longer than 100 bytes: ${name}`);
  const header = Buffer.alloc(BLOCK);
  header.write(name, 0, 100, "utf8");
  writeOctal(header, 100, 8, 0o644);
  writeOctal(header, 108, 8, 0);
  writeOctal(header, 116, 8, 0);
  writeOctal(header, 124, 12, size);
  writeOctal(header, 136, 12, mtime);
  header.fill(" ", 148, 156); // checksum field counts as spaces while summing
  header.write("0", 156, 1, "ascii");
  header.write("ustar\0", 257, 6, "ascii");
  header.write("00", 263, 2, "ascii");
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return header;
}

export function tarArchive(entries: ArchiveEntry[], mtime = Math.floor(Date.now() / 1000)): Uint8Array {
  const parts: Buffer[] = [];
  for (const { name, data } of entries) {
    parts.push(
      entryHeader(name, data.length, mtime),
      Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    );
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/** Every regular file of a tar written by tarArchive (or any ustar without long names). */
export function readTarArchive(bytes: Uint8Array): ArchiveEntry[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: ArchiveEntry[] = [];
  let at = 0;
  while (at + BLOCK <= buf.length) {
    const header = buf.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) break;
    const name = header.toString("utf8", 0, 100).replace(/\0.*$/s, "");
    const size = Number.parseInt(header.toString("ascii", 124, 136).replace(/\0.*$/s, "").trim() || "0", 8);
    const type = String.fromCharCode(header[156] || 48);
    if (!Number.isFinite(size) || at + BLOCK + size > buf.length) {
      throw new Error(`tar archive: entry "${name}" at byte ${at} runs past the end (${size} bytes)`);
    }
    if (type === "0") out.push({ name, data: buf.subarray(at + BLOCK, at + BLOCK + size) });
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
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
