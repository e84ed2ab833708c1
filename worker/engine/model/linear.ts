import * as tf from "@tensorflow/tfjs-core";
import { isNativeMatmulInstalled } from "../backend/native-matmul.js";

/**
 * y = x · Wᵀ (+ b) for a 2-D activation x [N, in] and a weight in Hugging Face layout
 * W [out, in]. Every linear layer of the model goes through here so the backend work
 * (native matmul, explicit-transpose gradient) has one place to act.
 *
 * Stock tfjs-wasm runs only untransposed 2-D matmuls fast (XNNPACK); a transposed one
 * (the forward x·Wᵀ and both backward products) takes a scalar loop ~10–20× slower.
 * So on wasm without the native matmul, linearExplicitTranspose makes every GEMM a
 * plain one by materialising the transposes; elsewhere one (fused) matMul is best.
 */
export function linear(x: tf.Tensor2D, weight: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor2D {
  if (tf.getBackend() === "wasm" && !isNativeMatmulInstalled())
    return linearExplicitTranspose(x, weight, bias);
  return linearMatMul(x, weight, bias);
}

function checkShapes(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): void {
  if (x.rank !== 2 || weight.rank !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new Error(
      `linear: expected x [N, in] and weight [out, in], got x [${x.shape}] and weight [${weight.shape}]`,
    );
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== weight.shape[0])) {
    throw new Error(
      `linear: bias must be [${weight.shape[0]}] for weight [${weight.shape}], got [${bias.shape}]`,
    );
  }
}

/**
 * One matMul with transposeB (what native BLAS and tfjs-node do best), then the bias.
 * Not tf.fused.matMul: stock tfjs-wasm 4.22's _FusedMatMul adds the bias to the wrong
 * columns when transposeB is set (test/worker/engine/model/linear.test.ts shows it).
 */
export function linearMatMul(x: tf.Tensor2D, weight: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor2D {
  checkShapes(x, weight, bias);
  const y: tf.Tensor2D = tf.matMul(x, weight, false, true);
  return bias ? tf.add<tf.Tensor2D>(y, bias) : y;
}

/**
 * Same value and gradients as linearMatMul, but every GEMM is untransposed:
 * forward x · T(W), dX = dy · W, dW = T(dy) · x, where T copies the transpose.
 */
export function linearExplicitTranspose(
  x: tf.Tensor2D,
  weight: tf.Tensor2D,
  bias?: tf.Tensor1D,
): tf.Tensor2D {
  checkShapes(x, weight, bias);
  const y = explicitTransposeMatMul(x, weight);
  return bias ? tf.add(y, bias) : y;
}

const explicitTransposeMatMul = tf.customGrad((x, w, save) => {
  const xs = x as tf.Tensor2D;
  const ws = w as tf.Tensor2D;
  (save as tf.GradSaveFunc)([xs, ws]);
  const value = tf.matMul(xs, tf.transpose(ws));
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      const dy2 = dy as tf.Tensor2D;
      return [tf.matMul(dy2, sw), tf.matMul(tf.transpose(dy2), sx)];
    },
  };
}) as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;
