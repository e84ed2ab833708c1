// Shared set-up for the training-loop tests: the golden `llama` fixture (123k parameters)
// on the backend the process would choose (TFJS_BACKEND, default auto), and synthetic packed
// rows for it.
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { IGNORE_INDEX, type TokenBatch } from "../../../../worker/engine/data/batch.js";
import type { CausalLM } from "../../../../worker/engine/model/causal-lm.js";
import { loadModel } from "../../../../worker/engine/model/load-model.js";
import { Rng } from "../../../../worker/engine/train/rng.js";
import { initTestBackend } from "../../../support/engine-backend.js";

export const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../../fixtures/llama");

export async function useBackend(): Promise<string> {
  const info = await initTestBackend();
  await tf.ready();
  return info.name;
}

export async function loraModel(seed: number, dropout = 0): Promise<CausalLM> {
  return loadModel(FIXTURE, { lora: { r: 4, alpha: 8, dropout }, seed });
}

/**
 * `numRows` packed rows of `seqLen` tokens, each holding two segments (BOS + prompt + answer),
 * labels on the answer half; the answer is a deterministic function of the prompt so the loss
 * can fall. Row 0's second segment is cut short and padded, so padding is exercised too.
 */
export function packedRows(numRows: number, seqLen: number, seed: number, vocab = 384): TokenBatch {
  const rng = Rng.fromSeed(seed);
  const n = numRows * seqLen;
  const rows: TokenBatch = {
    batchSize: numRows,
    seqLen,
    inputIds: new Int32Array(n),
    labels: new Int32Array(n).fill(IGNORE_INDEX),
    positionIds: new Int32Array(n),
    segmentIds: new Int32Array(n).fill(-1),
  };
  for (let r = 0; r < numRows; r++) {
    const first = Math.floor(seqLen / 2);
    const segments = [first, r === 0 ? seqLen - first - 3 : seqLen - first];
    let at = r * seqLen;
    segments.forEach((len, s) => {
      const half = Math.floor(len / 2);
      for (let t = 0; t < len; t++) {
        const token =
          t === 0
            ? 1
            : t < half
              ? 3 + rng.nextInt(vocab - 3)
              : 3 + ((rows.inputIds[at - half + 1]! * 7) % (vocab - 3));
        rows.inputIds[at] = token;
        rows.positionIds[at] = t;
        rows.segmentIds[at] = s;
        if (t >= half) rows.labels[at] = token;
        at++;
      }
    });
  }
  return rows;
}
