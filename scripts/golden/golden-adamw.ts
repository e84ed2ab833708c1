// The AdamW a golden file's `adamw` section describes (the reference's torch.optim.AdamW).
import { AdamW } from "../../worker/engine/train/adamw.js";

export interface GoldenAdamWConfig {
  betas: [number, number];
  eps: number;
  weight_decay: number;
}

export function goldenAdamW(cfg: GoldenAdamWConfig): AdamW {
  return new AdamW({ beta1: cfg.betas[0], beta2: cfg.betas[1], eps: cfg.eps, weightDecay: cfg.weight_decay });
}
