// The DPO loss of a batch of preference pairs, as TRL's DPOTrainer computes it:
//   logits_i = (log π(chosen) − log π_ref(chosen)) − (log π(rejected) − log π_ref(rejected))
//   sigmoid: −log σ(β·logits)      hinge: max(0, 1 − β·logits)      ipo: (logits − 1/(2β))²
// with log-probabilities summed over each answer's label tokens (ipo: averaged, as TRL does).
// Rewards are β·(log π − log π_ref) of each answer (statistics only).

import * as tf from "@tensorflow/tfjs-core";

export const DPO_LOSS_TYPES = ["sigmoid", "hinge", "ipo"] as const;
export type DpoLossType = (typeof DPO_LOSS_TYPES)[number];

export interface DpoSettings {
  beta: number;
  lossType: DpoLossType;
  /** weight of an added NLL term on the chosen answers (TRL's rpo_alpha); null or 0 = off */
  rpoAlpha: number | null;
}

export interface DpoPairTerms {
  /** per-pair loss [n], differentiable */
  losses: tf.Tensor1D;
  /** β·(log π − log π_ref) of the chosen and the rejected answer [n] */
  chosenRewards: tf.Tensor1D;
  rejectedRewards: tf.Tensor1D;
}

/**
 * Per-pair DPO terms. `policy` and `reference` are [2n] sequence log-probabilities, the n chosen
 * answers first, then the n rejected ones; `lengths` [2n] their label-token counts (ipo only).
 */
export function dpoPairTerms(
  policy: tf.Tensor1D,
  reference: tf.Tensor1D,
  lengths: Float32Array,
  settings: DpoSettings,
): DpoPairTerms {
  const n = policy.shape[0] / 2;
  const { beta, lossType } = settings;
  return tf.tidy(() => {
    let pol: tf.Tensor = policy;
    let ref: tf.Tensor = reference;
    if (lossType === "ipo") {
      const len = tf.tensor1d(lengths.map((l) => Math.max(1, l)));
      pol = tf.div(pol, len);
      ref = tf.div(ref, len);
    }
    const ratio = tf.sub(pol, ref) as tf.Tensor1D; // [2n]
    const chosen = tf.slice(ratio, 0, n);
    const rejected = tf.slice(ratio, n, n);
    const logits = tf.sub(chosen, rejected);
    let losses: tf.Tensor;
    if (lossType === "sigmoid") losses = tf.softplus(tf.mul(logits, -beta));
    else if (lossType === "hinge") losses = tf.relu(tf.sub(1, tf.mul(logits, beta)));
    else losses = tf.square(tf.sub(logits, 1 / (2 * beta)));
    // rewards only feed statistics: the gradient is taken of the loss alone
    return {
      losses: losses as tf.Tensor1D,
      chosenRewards: tf.mul(chosen, beta) as tf.Tensor1D,
      rejectedRewards: tf.mul(rejected, beta) as tf.Tensor1D,
    };
  });
}
