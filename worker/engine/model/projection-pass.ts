import type * as tf from "@tensorflow/tfjs-core";
import type { LoraLinear } from "../lora/lora-layer.js";

/**
 * How one forward pass runs a projection: which adapter it applies (one for the whole batch, or
 * one per row) and with what dropout. The layers call it for q, k, v, o, gate, up, down in that
 * order, which is the order dropout seeds are drawn in.
 */
export type Project = (x: tf.Tensor2D, p: LoraLinear) => tf.Tensor2D;
