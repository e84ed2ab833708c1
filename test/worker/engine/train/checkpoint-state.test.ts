import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CheckpointFormatError,
  decodeCheckpoint,
  encodeCheckpoint,
  type TrainCheckpoint,
} from "../../../../worker/engine/train/checkpoint-state.js";

function sample(): TrainCheckpoint {
  return {
    state: {
      step: 7,
      totalSteps: 30,
      stepsPerEpoch: 10,
      epoch: 0,
      stepInEpoch: 7,
      seed: 123,
      rng: [1, 2, 3, 4294967295],
      initialLoss: 5.5,
      trainedTokens: 9000,
      optimizerScalars: { t: 7 },
      meta: { job: "ftjob-1" },
    },
    weights: new Map([
      [
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
        { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) },
      ],
      ["scalar", { shape: [], data: Float32Array.from([Math.PI]) }],
    ]),
    optimizer: new Map([["m/scalar", { shape: [], data: Float32Array.from([0.25]) }]]),
  };
}

test("a checkpoint round-trips through bytes exactly", () => {
  const original = sample();
  const bytes = encodeCheckpoint(original);
  // the safetensors layout: header length, then a JSON header padded to 8 bytes
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(headerLen % 8, 0);
  const back = decodeCheckpoint(bytes);
  assert.deepEqual(back.state, original.state);
  assert.deepEqual([...back.weights.keys()].sort(), [...original.weights.keys()].sort());
  for (const [k, v] of original.weights) assert.deepEqual(back.weights.get(k), v);
  assert.deepEqual(back.optimizer.get("m/scalar"), original.optimizer.get("m/scalar"));
  // decoding from an unaligned view of the same bytes works too
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assert.deepEqual(decodeCheckpoint(shifted.subarray(1)).state, original.state);
});

test("corrupt checkpoints are errors that say what is wrong", () => {
  const bytes = encodeCheckpoint(sample());
  assert.throws(() => decodeCheckpoint(bytes.subarray(0, 4)), CheckpointFormatError);
  assert.throws(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 4)), /bad dtype, shape or offsets/);
  const bad = new Uint8Array(bytes);
  new DataView(bad.buffer).setBigUint64(0, 1n << 40n, true);
  assert.throws(() => decodeCheckpoint(bad), /header length/);
  const wrongShape = sample();
  wrongShape.weights.set("x", { shape: [4], data: new Float32Array(3) });
  assert.throws(() => encodeCheckpoint(wrongShape), /"weights\/x"/);
});
