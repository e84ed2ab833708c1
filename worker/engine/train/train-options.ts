// The training loop's API: what it needs from a model and an optimizer, what it takes
// (TrainOptions), what it reports after every step and epoch, and what it returns.

import type * as tf from "@tensorflow/tfjs-core";
import type { TokenBatch } from "../data/batch.js";
import type { TensorData } from "./checkpoint-state.js";
import type { ResolvedHyperparameters } from "./hyperparameters.js";
import type { RngState } from "./rng.js";
import type { TrainObjective } from "./train-objective.js";

/** What the loop needs from a model; CausalLM (model/causal-lm.ts) has this shape. */
export interface TrainableModel {
  /** The variables the optimizer updates, keyed by the name they are saved under. */
  readonly trainableParams: Map<string, tf.Variable>;
  /**
   * For one micro-batch: the SUM of token cross-entropies over its label tokens and how many
   * label tokens the argmax predicts correctly. `training` turns dropout on.
   */
  lossTerms(batch: TokenBatch, options: { training?: boolean }): { lossSum: tf.Scalar; correct: tf.Scalar };
  /** the model's dropout RNG, saved in checkpoints so a resumed run draws the same masks */
  rngState?(): RngState;
  setRngState?(state: RngState): void;
}

/** What the loop needs from an optimizer (AdamW). */
export interface TrainOptimizer {
  /** Update every variable that has a gradient, at learning rate `lr`. */
  applyGradients(variables: Map<string, tf.Variable>, grads: tf.NamedTensorMap, lr: number): void;
  exportState(): { scalars: Record<string, number>; tensors: Map<string, TensorData> };
  importState(state: { scalars: Record<string, number>; tensors: Map<string, TensorData> }): void;
}

export type TrainHyperparameters = Pick<
  ResolvedHyperparameters,
  "n_epochs" | "batch_size" | "learning_rate_multiplier" | "warmup_ratio" | "lr_scheduler" | "full_finetune"
> & { weight_decay?: number };

export interface StepMetrics {
  /** 1-based optimizer step just finished */
  step: number;
  total_steps: number;
  /** 0-based epoch */
  epoch: number;
  train_loss: number;
  /** supervised objective only */
  train_mean_token_accuracy?: number;
  /** present on steps where the validation sample was scored */
  valid_loss?: number;
  valid_mean_token_accuracy?: number;
  /**
   * the objective's metrics with their train_/valid_ prefix, e.g. train_mean_token_accuracy
   * (supervised) or train_rewards_chosen, …_rejected, …_accuracies, …_margins (DPO)
   */
  extra: Record<string, number>;
  learning_rate: number;
  grad_norm: number;
  /** label tokens in this step */
  label_tokens: number;
  /** real tokens trained so far */
  trained_tokens: number;
  step_ms: number;
}

export interface EpochEnd {
  /** 0-based epoch just finished */
  epoch: number;
  step: number;
  /** resume state (also the pause/crash path); pass back as `resumeFrom` */
  checkpoint: Uint8Array;
  /** the last step's metrics */
  metrics: StepMetrics | null;
}

export interface FinalMetrics {
  step: number;
  train_loss: number | null;
  train_mean_token_accuracy: number | null;
  full_valid_loss?: number;
  full_valid_mean_token_accuracy?: number;
  /** the objective's metrics on the whole validation set, prefixed full_valid_ */
  extra: Record<string, number>;
}

export type TrainResult =
  | { status: "completed"; step: number; totalSteps: number; trainedTokens: number; metrics: FinalMetrics }
  | { status: "stopped"; step: number; totalSteps: number; trainedTokens: number; checkpoint: Uint8Array };

export interface TrainOptions {
  model: TrainableModel;
  /** default: AdamW (adamw.ts) with the hyperparameters' weight_decay */
  optimizer?: TrainOptimizer;
  /** training rows (supervised objective) or any objective (e.g. DPO pairs, dpo-objective.ts) */
  train: TokenBatch | TrainObjective;
  validation?: TokenBatch | TrainObjective;
  hyperparameters: TrainHyperparameters;
  seed: number;
  /** row order of an epoch; default: data/batch-order.ts batchOrder */
  batchOrder?: (numRows: number, epoch: number, seed: number) => readonly number[];
  /** rows per forward/backward pass; batch_size is reached by accumulation (default 4) */
  microBatchSize?: number;
  maxGradNorm?: number;
  /** score the validation sample every N steps (default: about 10 times per run; 0 = never) */
  validEvery?: number;
  /** rows in each validation sample (default: one micro-batch) */
  validSampleRows?: number;
  /** stop when the loss exceeds this × the first step's loss (default 5) */
  divergenceFactor?: number;
  onStep?: (metrics: StepMetrics) => void | Promise<void>;
  onEpochEnd?: (end: EpochEnd) => void | Promise<void>;
  shouldStop?: () => boolean | Promise<boolean>;
  signal?: AbortSignal;
  resumeFrom?: Uint8Array;
  /** stored in checkpoints, e.g. the job id and resolved hyperparameters */
  checkpointMeta?: Record<string, unknown>;
}
