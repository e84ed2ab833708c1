// safetensors read and write (https://github.com/huggingface/safetensors, format section):
// 8-byte little-endian header length N, N bytes of JSON header, then the raw tensor bytes.
// Reading widens F32/F16/BF16 to float32 and reads each tensor straight from the file into its
// own buffer (the file is never held in memory whole). Every header field is checked against the
// file size before any data is read, so a corrupt file is an error naming the file, not a crash.

import { open, writeFile } from "node:fs/promises";

const BYTES_PER_ELEMENT: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** byte offsets relative to the start of the data section */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsEntry>;
  /** absolute file offset of the data section */
  dataStart: number;
}

export interface FloatTensorData {
  /** dtype as stored in the file; `data` is always float32 */
  dtype: string;
  shape: number[];
  data: Float32Array;
}

export class SafetensorsError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "SafetensorsError";
  }
}

function parseHeader(file: string, json: string, dataBytes: number): Omit<SafetensorsHeader, "dataStart"> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new SafetensorsError(file, `header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new SafetensorsError(file, "header is not a JSON object");
  }
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "__metadata__") {
      for (const [k, v] of Object.entries((value ?? {}) as Record<string, unknown>)) metadata[k] = String(v);
      continue;
    }
    const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const { dtype, shape, data_offsets: offsets } = entry ?? {};
    if (typeof dtype !== "string") throw new SafetensorsError(file, `tensor "${name}": missing dtype`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(file, `tensor "${name}": bad shape ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isInteger(o) && o >= 0)
    ) {
      throw new SafetensorsError(file, `tensor "${name}": bad data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataBytes) {
      throw new SafetensorsError(
        file,
        `tensor "${name}": data_offsets [${begin}, ${end}] outside the ${dataBytes}-byte data section`,
      );
    }
    const size = BYTES_PER_ELEMENT[dtype];
    if (size !== undefined) {
      const elements = (shape as number[]).reduce((a, b) => a * b, 1);
      if (elements * size !== end - begin) {
        throw new SafetensorsError(
          file,
          `tensor "${name}": ${dtype}${JSON.stringify(shape)} needs ${elements * size} bytes, offsets give ${end - begin}`,
        );
      }
    }
    tensors.set(name, { dtype, shape: shape as number[], begin, end });
  }
  return { metadata, tensors };
}

export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const handle = await open(file, "r");
  try {
    return await readHeaderFrom(handle, file);
  } finally {
    await handle.close();
  }
}

type Handle = Awaited<ReturnType<typeof open>>;

async function readHeaderFrom(handle: Handle, file: string): Promise<SafetensorsHeader> {
  const { size } = await handle.stat();
  if (size < 8) throw new SafetensorsError(file, `file is ${size} bytes, too short for a safetensors header`);
  const lenBuf = Buffer.alloc(8);
  await handle.read(lenBuf, 0, 8, 0);
  const headerLen = Number(lenBuf.readBigUInt64LE(0));
  if (headerLen > MAX_HEADER_BYTES || 8 + headerLen > size) {
    throw new SafetensorsError(file, `header length ${headerLen} does not fit in a ${size}-byte file`);
  }
  const headerBuf = Buffer.alloc(headerLen);
  await handle.read(headerBuf, 0, headerLen, 8);
  const dataStart = 8 + headerLen;
  return { ...parseHeader(file, headerBuf.toString("utf8"), size - dataStart), dataStart };
}

/** float16 bits → float32 value (IEEE 754 half, incl. subnormals, inf, NaN) */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function widen(dtype: string, raw: Uint8Array, out: Float32Array): void {
  const n = out.length;
  if (dtype === "BF16") {
    // bf16 is the top half of a float32: shift the 16 bits up
    const src = new Uint16Array(raw.buffer, raw.byteOffset, n);
    const dst = new Uint32Array(out.buffer, out.byteOffset, n);
    for (let i = 0; i < n; i++) dst[i] = src[i] << 16;
  } else {
    const src = new Uint16Array(raw.buffer, raw.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = halfToFloat(src[i]);
  }
}

/**
 * Read tensors of one file as float32. `names` limits which tensors are read (default all).
 * Unsupported dtypes (I64, F64, …) are an error naming the tensor.
 */
export async function readSafetensors(
  file: string,
  names?: Iterable<string>,
): Promise<{ metadata: Record<string, string>; tensors: Map<string, FloatTensorData> }> {
  const handle = await open(file, "r");
  try {
    const header = await readHeaderFrom(handle, file);
    const wanted = names ? [...names] : [...header.tensors.keys()];
    const tensors = new Map<string, FloatTensorData>();
    for (const name of wanted) {
      const entry = header.tensors.get(name);
      if (!entry) throw new SafetensorsError(file, `no tensor named "${name}"`);
      if (BYTES_PER_ELEMENT[entry.dtype] === undefined) {
        throw new SafetensorsError(
          file,
          `tensor "${name}" has dtype ${entry.dtype}; only F32, F16 and BF16 are supported`,
        );
      }
      const elements = entry.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(elements);
      const bytes = entry.end - entry.begin;
      // F32 lands directly in the result; F16/BF16 go through one tensor-sized staging buffer
      const target = entry.dtype === "F32" ? new Uint8Array(data.buffer) : new Uint8Array(bytes);
      const { bytesRead } = await handle.read(target, 0, bytes, header.dataStart + entry.begin);
      if (bytesRead !== bytes) throw new SafetensorsError(file, `tensor "${name}": file ended early`);
      if (entry.dtype !== "F32") widen(entry.dtype, target, data);
      tensors.set(name, { dtype: entry.dtype, shape: entry.shape, data });
    }
    return { metadata: header.metadata, tensors };
  } finally {
    await handle.close();
  }
}

export interface TensorToWrite {
  shape: number[];
  data: Float32Array;
}

/**
 * Write float32 tensors the way the Python safetensors library does: `__metadata__` first, tensors
 * sorted by name, compact JSON padded with spaces to a multiple of 8 bytes, data in header order.
 */
export async function writeSafetensors(
  file: string,
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
  metadata: Record<string, string> = { format: "pt" },
): Promise<void> {
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).sort(
    ([a], [b]) => (a < b ? -1 : a > b ? 1 : 0),
  );
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of entries) {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (elements !== t.data.length) {
      throw new Error(
        `writeSafetensors ${file}: tensor "${name}" shape ${JSON.stringify(t.shape)} does not match ${t.data.length} values`,
      );
    }
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(headerBytes.length));
  const parts: Uint8Array[] = [lenBuf, headerBytes];
  for (const [, t] of entries)
    parts.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  await writeFile(file, parts);
}
