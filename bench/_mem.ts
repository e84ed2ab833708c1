import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../worker/engine/backend.js";
import { loadModel } from "../worker/engine/model/decoder.js";
async function main() {
  await initBackend();
  const m = await loadModel("models/smollm2-135m", { lora: { r: 8, alpha: 16, dropout: 0 } });
  const T = Number(process.env.T ?? 256), B = Number(process.env.ROWS ?? 1);
  const n = B * T;
  const batch = { batchSize: B, seqLen: T, inputIds: Int32Array.from({ length: n }, (_, i) => 3 + (i * 7) % 400), labels: Int32Array.from({ length: n }, (_, i) => (i % T < T / 2 ? -100 : 3 + (i * 7) % 400)), positionIds: Int32Array.from({ length: n }, (_, i) => i % T), segmentIds: new Int32Array(n) };
  m.gradientCheckpointing = process.env.CK === "1";
  const mb = (x: number) => (x / 2 ** 20).toFixed(0);
  console.log("weights MiB", mb(tf.memory().numBytes), "rss", mb(process.memoryUsage.rss()));
  for (let i = 0; i < 2; i++) {
    const t0 = performance.now();
    let fwd = 0;
    const { value, grads } = tf.variableGrads(() => {
      const terms = m.lossTerms(batch, { training: true });
      terms.correct.dispose();
      fwd = process.memoryUsage.rss();
      return tf.div(terms.lossSum, 100) as tf.Scalar;
    }, [...m.trainableParams.values()]);
    console.log("after fwd MiB", mb(fwd), "after bwd", mb(tf.memory().numBytes), "rss", mb(process.memoryUsage.rss()), "maxrss", mb(process.resourceUsage().maxRSS * 1024), "ms", (performance.now() - t0).toFixed(0));
    tf.dispose([value, ...Object.values(grads)]);
  }
}
main();
