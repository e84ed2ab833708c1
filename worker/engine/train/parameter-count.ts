// The number of weights of a model, from its config alone (no weights read): what training
// throughput scales with (FLOPs ≈ 6 · parameters · tokens for a forward and backward pass).

import type { ModelConfig } from "../hf/config.js";

export function countParameters(c: ModelConfig): number {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const attention =
    c.hiddenSize * (q + 2 * kv) +
    q * c.hiddenSize +
    (c.qkvBias ? q + 2 * kv : 0) +
    (c.oBias ? c.hiddenSize : 0);
  const mlp = 3 * c.hiddenSize * c.intermediateSize + (c.mlpBias ? 2 * c.intermediateSize + c.hiddenSize : 0);
  const layer = attention + mlp + 2 * c.hiddenSize;
  const embeddings = c.vocabSize * c.hiddenSize;
  return embeddings + c.numLayers * layer + c.hiddenSize + (c.tieWordEmbeddings ? 0 : embeddings);
}
