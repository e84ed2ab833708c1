// LlamaMLP: down(silu(gate(x)) · up(x)), the three projections LoRA-wrapped.

import * as tf from "@tensorflow/tfjs-core";
import type { LoraLinear } from "../lora/lora-layer.js";
import type { Project } from "./projection-pass.js";

export class MLP {
  constructor(
    readonly gate: LoraLinear,
    readonly up: LoraLinear,
    readonly down: LoraLinear,
  ) {}

  projections(): LoraLinear[] {
    return [this.gate, this.up, this.down];
  }

  /** x [N, D] → [N, D]. */
  forward(x: tf.Tensor2D, project: Project): tf.Tensor2D {
    const gate = project(x, this.gate);
    const up = project(x, this.up);
    const silu = tf.mul(gate, tf.sigmoid(gate));
    return project(tf.mul(silu, up) as tf.Tensor2D, this.down);
  }
}
