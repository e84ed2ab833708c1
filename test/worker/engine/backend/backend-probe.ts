// Child process for backend.test.ts: initBackend() with the options the worker reads from the
// environment it was given
// (TFJS_BACKEND, TUNEHOUSE_NATIVE_MATMUL, OPENBLAS_*), printing the outcome as JSON.
import * as tf from "@tensorflow/tfjs-core";
import { loadBackendOptions } from "../../../../src/config.js";
import { initBackend } from "../../../../worker/engine/backend/backend.js";
import { linear } from "../../../../worker/engine/model/linear.js";

try {
  const info = await initBackend(loadBackendOptions());
  // a later call without options gets the same backend (the jobs and chat serving call it so)
  const again = await initBackend();
  // A gradient through linear() proves gradients are registered and the chosen path works.
  const grad = tf.tidy(() => {
    const x = tf.tensor2d([[1, 2, 3]]);
    const w = tf.tensor2d([
      [1, 0, 0],
      [0, 1, 0],
    ]);
    return Array.from(
      tf
        .grad((ww: tf.Tensor) => tf.sum(linear(x, ww as tf.Tensor2D)))(w)
        .dataSync(),
    );
  });
  console.log(
    JSON.stringify({
      info,
      same: info === again,
      backend: tf.getBackend(),
      grad,
      env: {
        OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE ?? null,
        OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? null,
      },
    }),
  );
} catch (e) {
  console.log(JSON.stringify({ error: (e as Error).message }));
}
