// Everything needed to continue a run exactly where it stopped, as one byte string:
// trainable weights (LoRA A/B, or every weight for full fine-tuning), the optimizer's
// moments and counters, the step, the epoch and position in that epoch's data order, the
// RNG state, and the few numbers the loop keeps across steps (initial loss for the
// divergence check, tokens trained so far). A resumed run that loads this produces the
// same losses as one that never stopped (test/worker/engine/train/train-loop.test.ts).
//
// Byte layout: a safetensors file held in memory (F32 tensors; the counters as JSON in
// `__metadata__.trainer_state`), so any safetensors reader can inspect a checkpoint.
// Tensor names: `weights/<variable name>` and `optimizer/<optimizer key>`.

import type { RngState } from "./rng.js";

export const CHECKPOINT_FORMAT = "tunehouse-train-checkpoint/1";

export interface TensorData {
  shape: number[];
  data: Float32Array;
}

export interface TrainerState {
  /** optimizer steps completed */
  step: number;
  totalSteps: number;
  stepsPerEpoch: number;
  /** 0-based epoch the next step belongs to */
  epoch: number;
  /** optimizer steps already done inside `epoch` (the position in its data order) */
  stepInEpoch: number;
  seed: number;
  /** the model's dropout RNG (null when the model has none) */
  rng: RngState | null;
  /** loss of the first step: the reference for the divergence check */
  initialLoss: number | null;
  /** real (non-padding) tokens consumed so far */
  trainedTokens: number;
  /** scalar optimizer state (e.g. its own step counter) */
  optimizerScalars: Record<string, number>;
  /** free-form, e.g. the resolved hyperparameters, so a resume can check it runs the same job */
  meta?: Record<string, unknown>;
}

export interface TrainCheckpoint {
  state: TrainerState;
  weights: Map<string, TensorData>;
  optimizer: Map<string, TensorData>;
}

const WEIGHTS = "weights/";
const OPTIMIZER = "optimizer/";

export function encodeCheckpoint(checkpoint: TrainCheckpoint): Uint8Array {
  const entries: [string, TensorData][] = [
    ...[...checkpoint.weights].map(([k, v]): [string, TensorData] => [WEIGHTS + k, v]),
    ...[...checkpoint.optimizer].map(([k, v]): [string, TensorData] => [OPTIMIZER + k, v]),
  ].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {
    __metadata__: { format: CHECKPOINT_FORMAT, trainer_state: JSON.stringify(checkpoint.state) },
  };
  let offset = 0;
  for (const [name, t] of entries) {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (elements !== t.data.length) {
      throw new Error(
        `checkpoint tensor "${name}": shape ${JSON.stringify(t.shape)} does not match ${t.data.length} values`,
      );
    }
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

export class CheckpointFormatError extends Error {
  constructor(message: string) {
    super(`invalid training checkpoint: ${message}`);
    this.name = "CheckpointFormatError";
  }
}

export function decodeCheckpoint(bytes: Uint8Array): TrainCheckpoint {
  if (bytes.length < 8) throw new CheckpointFormatError(`${bytes.length} bytes is too short`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (8 + headerLen > bytes.length)
    throw new CheckpointFormatError(`header length ${headerLen} exceeds ${bytes.length} bytes`);
  let header: Record<string, any>;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLen).toString("utf8"));
  } catch (e) {
    throw new CheckpointFormatError(`header is not JSON (${(e as Error).message})`);
  }
  const meta = header.__metadata__;
  if (meta?.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointFormatError(`format ${JSON.stringify(meta?.format)}, expected ${CHECKPOINT_FORMAT}`);
  }
  const state = JSON.parse(meta.trainer_state) as TrainerState;
  const dataStart = 8 + headerLen;
  const weights = new Map<string, TensorData>();
  const optimizer = new Map<string, TensorData>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [begin, end] = entry.data_offsets as [number, number];
    const elements = (entry.shape as number[]).reduce((a, b) => a * b, 1);
    if (
      entry.dtype !== "F32" ||
      end - begin !== elements * 4 ||
      dataStart + end > bytes.length ||
      begin < 0
    ) {
      throw new CheckpointFormatError(`tensor "${name}" has a bad dtype, shape or offsets`);
    }
    // copy out: the caller may drop `bytes`, and Float32Array needs 4-byte alignment
    const data = new Float32Array(elements);
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + begin, dataStart + end));
    const tensor = { shape: entry.shape as number[], data };
    if (name.startsWith(WEIGHTS)) weights.set(name.slice(WEIGHTS.length), tensor);
    else if (name.startsWith(OPTIMIZER)) optimizer.set(name.slice(OPTIMIZER.length), tensor);
    else throw new CheckpointFormatError(`unexpected tensor "${name}"`);
  }
  return { state, weights, optimizer };
}
