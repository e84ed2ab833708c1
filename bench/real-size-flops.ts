// Model FLOPs of one training step, the same count for us and for the peer: forward 2·P per
// token, backward 2·P (activation gradients) + 2·P more for full fine-tuning (weight gradients);
// attention scores and context add 4·L·T·D per token each way.
import type { ModelConfig } from "../worker/engine/hf/config.js";
import { baseParameterCount } from "../worker/engine/train/memory-estimate.js";

export function trainingStepFlops(
  config: ModelConfig,
  mode: "lora" | "full",
  rows: number,
  seq: number,
): number {
  const P = baseParameterCount(config);
  const attention = 4 * config.numLayers * seq * config.numHeads * config.headDim;
  const full = mode === "full";
  return rows * seq * ((full ? 6 : 4) * P + (full ? 3 : 2) * attention);
}
