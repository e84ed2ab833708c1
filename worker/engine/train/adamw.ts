// AdamW (Loshchilov & Hutter), step for step as torch.optim.AdamW computes it:
//   p ← p · (1 − lr·λ)                                  decoupled weight decay
//   m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
//   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
// Moments live on the device as non-trainable variables; exportState/importState carry them
// (and the step count) through checkpoints so a resumed run continues exactly.

import * as tf from "@tensorflow/tfjs-core";
import type { TensorData } from "./checkpoint-state.js";

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /**
   * Which parameters are decayed (default: all but biases and norm weights, as the Hugging Face
   * Trainer groups them). Only matters when weightDecay > 0.
   */
  decays?: (name: string) => boolean;
}

export function decaysByDefault(name: string): boolean {
  return !name.endsWith(".bias") && !/norm\.weight$/.test(name);
}

let momentCounter = 0;

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private decays: (name: string) => boolean;
  private m = new Map<string, tf.Variable>();
  private v = new Map<string, tf.Variable>();
  /** optimizer steps taken */
  step = 0;

  constructor(options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.decays = options.decays ?? decaysByDefault;
    for (const [k, val] of Object.entries({ beta1: this.beta1, beta2: this.beta2 })) {
      if (!(val >= 0 && val < 1)) throw new RangeError(`AdamW ${k} must be in [0, 1), got ${val}`);
    }
    if (!(this.eps > 0)) throw new RangeError(`AdamW eps must be > 0, got ${this.eps}`);
    if (!(this.weightDecay >= 0))
      throw new RangeError(`AdamW weightDecay must be >= 0, got ${this.weightDecay}`);
  }

  private moment(store: Map<string, tf.Variable>, name: string, shape: number[]): tf.Variable {
    let slot = store.get(name);
    if (!slot) {
      momentCounter += 1;
      slot = tf.variable(tf.zeros(shape), false, `adamw${momentCounter}/${name}`);
      store.set(name, slot);
    }
    return slot;
  }

  /** One update of every variable that has a gradient in `grads`, at learning rate `lr`. */
  applyGradients(variables: Map<string, tf.Variable>, grads: tf.NamedTensorMap, lr: number): void {
    if (!Number.isFinite(lr) || lr < 0)
      throw new RangeError(`AdamW learning rate must be finite and >= 0, got ${lr}`);
    this.step += 1;
    const c1 = 1 - this.beta1 ** this.step;
    const c2 = 1 - this.beta2 ** this.step;
    for (const [name, param] of variables) {
      const g = grads[name];
      if (!g) continue;
      const m = this.moment(this.m, name, param.shape);
      const v = this.moment(this.v, name, param.shape);
      tf.tidy(() => {
        const decay = this.weightDecay > 0 && this.decays(name) ? 1 - lr * this.weightDecay : 1;
        const mNew = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
        const vNew = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        const denom = tf.add(tf.div(tf.sqrt(vNew), Math.sqrt(c2)), this.eps);
        const decayed = decay === 1 ? param : tf.mul(param, decay);
        param.assign(tf.sub(decayed, tf.mul(tf.div(mNew, denom), lr / c1)));
        m.assign(mNew);
        v.assign(vNew);
      });
    }
  }

  exportState(): { scalars: Record<string, number>; tensors: Map<string, TensorData> } {
    const tensors = new Map<string, TensorData>();
    for (const [kind, store] of [
      ["m", this.m],
      ["v", this.v],
    ] as const) {
      for (const [name, t] of store)
        tensors.set(`${kind}/${name}`, { shape: t.shape, data: t.dataSync() as Float32Array });
    }
    return { scalars: { step: this.step }, tensors };
  }

  importState(state: { scalars: Record<string, number>; tensors: Map<string, TensorData> }): void {
    this.dispose();
    const step = state.scalars.step;
    if (!Number.isInteger(step) || step < 0) throw new Error(`AdamW state: bad step ${JSON.stringify(step)}`);
    this.step = step;
    for (const [key, t] of state.tensors) {
      const slash = key.indexOf("/");
      const kind = key.slice(0, slash);
      if (slash < 0 || (kind !== "m" && kind !== "v"))
        throw new Error(`AdamW state: unexpected tensor "${key}"`);
      const slot = this.moment(kind === "m" ? this.m : this.v, key.slice(slash + 1), t.shape);
      const value = tf.tensor(t.data, t.shape);
      slot.assign(value);
      value.dispose();
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
    this.step = 0;
  }
}
