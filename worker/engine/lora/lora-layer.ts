// LoRA (Hu et al. 2021) as PEFT implements it for nn.Linear:
//   y = x Wᵀ (+ b) + scaling · (dropout(x) Aᵀ) Bᵀ,   A [r, in], B [out, r], scaling = alpha / r
// (alpha / √r with rsLoRA). LoraLinear wraps one base linear layer of the model; the adapter to
// apply is an argument of every call (null = the base layer alone), never state of the layer, so
// one layer serves every adapter of its base model, and rows of one batch may use different ones.

import * as tf from "@tensorflow/tfjs-core";
import { linear } from "../model/linear.js";
import type { LoraAdapter, LoraPair } from "./lora-adapter.js";
import type { LoraSettings } from "./lora-config.js";
import type { LoraTargetModule } from "./lora-targets.js";

export class LoraLinear {
  constructor(
    /** module path, e.g. model.layers.0.self_attn.q_proj */
    readonly name: string,
    readonly kind: LoraTargetModule,
    /** base weight [out, in] in HF layout (replaced when an adapter is merged in) */
    public weight: tf.Tensor2D,
    readonly bias?: tf.Tensor1D,
  ) {}

  /** This layer's pair in `adapter`, if the adapter adapts it. */
  pairOf(adapter: LoraAdapter | null): LoraPair | undefined {
    return adapter?.pairs.get(this.name);
  }

  /**
   * Base linear plus `adapter`'s LoRA branch. `dropoutSeed` non-null = training with dropout: the
   * seed makes the mask reproducible (the caller draws it from its RNG).
   */
  forward(x: tf.Tensor2D, adapter: LoraAdapter | null, dropoutSeed: number | null): tf.Tensor2D {
    return loraLinear(
      x,
      this.weight,
      this.bias,
      this.pairOf(adapter),
      adapter?.settings ?? null,
      dropoutSeed,
    );
  }

  /**
   * x·Wᵀ (+ b) for all rows at once, plus each row's own LoRA delta (rows that share an adapter
   * and sit next to each other get one delta product). Same ops as forward() for a single row.
   */
  forwardRows(
    x: tf.Tensor2D,
    adapters: readonly (LoraAdapter | null)[],
    /** where each row's tokens sit in x */
    spans: readonly { start: number; length: number }[],
  ): tf.Tensor2D {
    const base = linear(x, this.weight, this.bias);
    const pairOf = (r: number) => this.pairOf(adapters[r]);
    if (adapters.every((_, r) => pairOf(r) === undefined)) return base;
    const delta = (input: tf.Tensor2D, r: number) =>
      loraDelta(input, pairOf(r) as LoraPair, (adapters[r] as LoraAdapter).settings.scaling);
    if (adapters.every((a, r) => pairOf(r) === pairOf(0) && a?.settings === adapters[0]?.settings))
      return tf.add(base, delta(x, 0));
    // mixed adapters: one delta per run of neighbouring rows with the same pair, zeros elsewhere
    const out = this.weight.shape[0];
    const pieces: tf.Tensor2D[] = [];
    for (let r = 0; r < spans.length; ) {
      let end = r + 1;
      const same = (a: number) => pairOf(a) === pairOf(r) && adapters[a]?.settings === adapters[r]?.settings;
      while (end < spans.length && same(end)) end++;
      const start = spans[r].start;
      const length = spans[end - 1].start + spans[end - 1].length - start;
      pieces.push(
        pairOf(r) === undefined
          ? tf.zeros([length, out])
          : delta(tf.slice(x, [start, 0], [length, -1]) as tf.Tensor2D, r),
      );
      r = end;
    }
    return tf.add(base, tf.concat(pieces, 0));
  }
}

/** scaling · (x Aᵀ) Bᵀ; the rank-r activation is scaled, not the [N, out] one: r/out of the work. */
function loraDelta(x: tf.Tensor2D, pair: LoraPair, scaling: number): tf.Tensor2D {
  const down = linear(x, pair.a as unknown as tf.Tensor2D);
  return linear(tf.mul(down, scaling), pair.b as unknown as tf.Tensor2D);
}

/** The base linear plus the LoRA branch of `pair` (none when pair or settings is missing). */
export function loraLinear(
  x: tf.Tensor2D,
  weight: tf.Tensor2D,
  bias: tf.Tensor1D | undefined,
  pair: LoraPair | undefined,
  settings: LoraSettings | null,
  dropoutSeed: number | null,
): tf.Tensor2D {
  const base = linear(x, weight, bias);
  if (!pair || !settings) return base;
  const input =
    dropoutSeed !== null && settings.dropout > 0
      ? tf.dropout(x, settings.dropout, undefined, dropoutSeed)
      : x;
  return tf.add(base, loraDelta(input as tf.Tensor2D, pair, settings.scaling));
}
