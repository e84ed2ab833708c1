// AdamW (Loshchilov & Hutter), step for step as torch.optim.AdamW computes it:
//   p ← p · (1 − lr·λ)                                  decoupled weight decay
//   m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
//   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
// Moments live on the device as non-trainable variables; exportState/importState carry them
// (and the step count) through checkpoints so a resumed run continues exactly.
//
// Speed: small parameters (LoRA matrices, norms, biases) are updated together, per decay group,
// on their gradients and values concatenated into one flat vector, with flat moments. A LoRA
// model has ~56 small tensors, and ~13 small kernels per tensor cost more in per-op overhead
// than the arithmetic itself; the elementwise results are the same numbers as per tensor.

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

/**
 * Tensors up to this many elements share a flat group; larger ones form a group of their own:
 * for them the per-op overhead is small next to the arithmetic, and concatenating and
 * slicing them back would add two copies of the parameters (measured slower on gpt-3.7M full).
 */
const FLAT_GROUP_MAX_SIZE = 16_384;

/** Parameters updated together: one flat vector, one pair of flat moments. */
interface FlatGroup {
  decays: boolean;
  names: string[];
  shapes: number[][];
  sizes: number[];
  m: tf.Variable;
  v: tf.Variable;
}

interface FlatLayout {
  /** names and shapes the layout was built for, in update order */
  key: string;
  groups: FlatGroup[];
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private decays: (name: string) => boolean;
  private layout: FlatLayout | undefined;
  /** Per-parameter moments not in the current layout (imported, or from an earlier layout). */
  private stored = new Map<string, { m: TensorData; v: TensorData }>();
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

  /** Moves the flat moments back into `stored`, per parameter, and drops the layout. */
  private unpackLayout(): void {
    if (!this.layout) return;
    for (const group of this.layout.groups) {
      const m = group.m.dataSync() as Float32Array;
      const v = group.v.dataSync() as Float32Array;
      let offset = 0;
      group.names.forEach((name, i) => {
        const size = group.sizes[i];
        const shape = group.shapes[i];
        this.stored.set(name, {
          m: { shape, data: m.slice(offset, offset + size) },
          v: { shape, data: v.slice(offset, offset + size) },
        });
        offset += size;
      });
      group.m.dispose();
      group.v.dispose();
    }
    this.layout = undefined;
  }

  /** The flat layout for these parameters, (re)built when the set of names or shapes changes. */
  private layoutFor(names: string[], variables: Map<string, tf.Variable>): FlatLayout {
    const key = names.map((n) => `${n}:${variables.get(n)!.shape.join("x")}`).join(",");
    if (this.layout?.key === key) return this.layout;
    this.unpackLayout();
    const groups: FlatGroup[] = [];
    const sizeOf = (n: string) => variables.get(n)!.size;
    const memberLists: { decays: boolean; members: string[] }[] = [];
    for (const decays of [true, false]) {
      const all = names.filter((n) => (this.weightDecay > 0 && this.decays(n)) === decays);
      const small = all.filter((n) => sizeOf(n) <= FLAT_GROUP_MAX_SIZE);
      if (small.length > 0) memberLists.push({ decays, members: small });
      for (const n of all) if (sizeOf(n) > FLAT_GROUP_MAX_SIZE) memberLists.push({ decays, members: [n] });
    }
    for (const { decays, members } of memberLists) {
      const shapes = members.map((n) => variables.get(n)!.shape);
      const sizes = shapes.map((shape) => shape.reduce((a, b) => a * b, 1));
      const total = sizes.reduce((a, b) => a + b, 0);
      const initial = { m: new Float32Array(total), v: new Float32Array(total) };
      let offset = 0;
      members.forEach((name, i) => {
        const saved = this.stored.get(name);
        if (saved) {
          if (saved.m.data.length !== sizes[i] || saved.v.data.length !== sizes[i]) {
            throw new Error(
              `AdamW state: moments of "${name}" have shape [${saved.m.shape}], the parameter [${shapes[i]}]`,
            );
          }
          initial.m.set(saved.m.data, offset);
          initial.v.set(saved.v.data, offset);
          this.stored.delete(name);
        }
        offset += sizes[i];
      });
      momentCounter += 1;
      const m = tf.variable(tf.tensor1d(initial.m), false, `adamw${momentCounter}/m`);
      const v = tf.variable(tf.tensor1d(initial.v), false, `adamw${momentCounter}/v`);
      groups.push({ decays, names: members, shapes, sizes, m, v });
    }
    this.layout = { key, groups };
    return this.layout;
  }

  /** One update of every variable that has a gradient in `grads`, at learning rate `lr`. */
  applyGradients(variables: Map<string, tf.Variable>, grads: tf.NamedTensorMap, lr: number): void {
    if (!Number.isFinite(lr) || lr < 0)
      throw new RangeError(`AdamW learning rate must be finite and >= 0, got ${lr}`);
    this.step += 1;
    const c1 = 1 - this.beta1 ** this.step;
    const c2 = 1 - this.beta2 ** this.step;
    const names = [...variables.keys()].filter((name) => grads[name]);
    if (names.length === 0) return;
    for (const group of this.layoutFor(names, variables).groups) {
      tf.tidy(() => {
        const flat = (ts: tf.Tensor[]) =>
          ts.length === 1 ? tf.reshape(ts[0], [-1]) : tf.concat(ts.map((t) => tf.reshape(t, [-1])));
        const g = flat(group.names.map((n) => grads[n]!));
        const param = flat(group.names.map((n) => variables.get(n)!));
        const { m, v } = group;
        const decay = group.decays ? 1 - lr * this.weightDecay : 1;
        // Each term in its own tidy, so its temporaries are freed before the next is built: a
        // large parameter (a 150k-token embedding) then needs a few copies at once, not a dozen.
        // The ops and their order are those of one expression, so the numbers are the same.
        const mNew = tf.tidy(() => tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1)));
        const vNew = tf.tidy(() => tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)));
        const denom = tf.tidy(() => tf.add(tf.div(tf.sqrt(vNew), Math.sqrt(c2)), this.eps));
        const step = tf.tidy(() => tf.mul(tf.div(mNew, denom), lr / c1));
        denom.dispose();
        m.assign(mNew);
        v.assign(vNew);
        const updated = tf.tidy(() => tf.sub(decay === 1 ? param : tf.mul(param, decay), step));
        step.dispose();
        // One slice per parameter, not tf.split: tfjs-wasm's SplitV copies the whole input
        // once per piece; Slice copies only the piece (contiguous-slice-kernel.ts).
        let offset = 0;
        group.names.forEach((n, i) => {
          const piece = group.names.length === 1 ? updated : tf.slice(updated, offset, group.sizes[i]);
          variables.get(n)!.assign(tf.reshape(piece, group.shapes[i]));
          offset += group.sizes[i];
        });
      });
    }
  }

  exportState(): { scalars: Record<string, number>; tensors: Map<string, TensorData> } {
    // Per parameter, as checkpoints have always stored them; the flat layout is rebuilt lazily.
    this.unpackLayout();
    const tensors = new Map<string, TensorData>();
    for (const kind of ["m", "v"] as const) {
      for (const [name, moments] of this.stored) {
        tensors.set(`${kind}/${name}`, { shape: moments[kind].shape, data: moments[kind].data.slice() });
      }
    }
    return { scalars: { step: this.step }, tensors };
  }

  importState(state: { scalars: Record<string, number>; tensors: Map<string, TensorData> }): void {
    this.dispose();
    const step = state.scalars.step;
    if (!Number.isInteger(step) || step < 0) throw new Error(`AdamW state: bad step ${JSON.stringify(step)}`);
    this.step = step;
    const partial = new Map<string, { m?: TensorData; v?: TensorData }>();
    for (const [key, t] of state.tensors) {
      const slash = key.indexOf("/");
      const kind = key.slice(0, slash);
      if (slash < 0 || (kind !== "m" && kind !== "v"))
        throw new Error(`AdamW state: unexpected tensor "${key}"`);
      const name = key.slice(slash + 1);
      const entry = partial.get(name) ?? {};
      entry[kind] = { shape: [...t.shape], data: Float32Array.from(t.data) };
      partial.set(name, entry);
    }
    for (const [name, { m, v }] of partial) {
      // A moment missing from the state starts at zero, as a fresh slot would.
      const shape = (m ?? v)!.shape;
      const size = shape.reduce((a, b) => a * b, 1);
      this.stored.set(name, {
        m: m ?? { shape, data: new Float32Array(size) },
        v: v ?? { shape, data: new Float32Array(size) },
      });
    }
  }

  dispose(): void {
    if (this.layout) {
      for (const group of this.layout.groups) {
        group.m.dispose();
        group.v.dispose();
      }
    }
    this.layout = undefined;
    this.stored.clear();
    this.step = 0;
  }
}
