import * as tf from "@tensorflow/tfjs-core";

/**
 * tfjs-wasm 4.22's Slice kernel starts with `backend.readSync(x)`, which copies the whole
 * input out of the wasm heap, even when the slice is one contiguous run of it. Slicing a
 * flat vector into n pieces (the optimizer's flat parameter vector) thus costs n full
 * copies (~450 ms for gpt-3.7M's 3.7M parameters). This override copies only the slice,
 * heap to heap, when it is contiguous; every other case goes to the stock kernel.
 *
 * Process-global: re-registered for every tfjs user of the wasm backend. Uses wasm
 * backend internals (makeOutput, typedArrayFromHeap), pinned with the tfjs version.
 */

interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

interface SliceArgs {
  inputs: { x: tf.TensorInfo };
  backend: unknown;
  attrs: { begin: number | number[]; size?: number | number[] };
}

let original: tf.KernelConfig | undefined;

function contiguousSlice(args: SliceArgs): tf.TensorInfo {
  const { x } = args.inputs;
  if (x.dtype === "string") return original!.kernelFunc(args as never) as tf.TensorInfo;
  const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, args.attrs.begin, args.attrs.size);
  if (!tf.slice_util.isSliceContinous(x.shape, begin, size)) {
    return original!.kernelFunc(args as never) as tf.TensorInfo;
  }
  const backend = args.backend as WasmHeapBackend;
  const start = tf.slice_util.computeFlatOffset(begin, tf.util.computeStrides(x.shape));
  const count = tf.util.sizeFromShape(size);
  const out = backend.makeOutput(size, x.dtype);
  // Views only after allocating: makeOutput may grow the heap and detach older views.
  backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(x).subarray(start, start + count));
  return out;
}

/** Replaces wasm's Slice with one that copies only a contiguous slice. Idempotent. */
export function installContiguousSliceKernel(): void {
  if (original) return;
  const kernel = tf.getKernel("Slice", "wasm");
  if (!kernel)
    throw new Error("wasm kernel Slice is not registered: import @tensorflow/tfjs-backend-wasm first");
  tf.unregisterKernel("Slice", "wasm");
  tf.registerKernel({ kernelName: "Slice", backendName: "wasm", kernelFunc: contiguousSlice as never });
  original = kernel;
}

/** Whether Slice on wasm currently runs the contiguous-copy override. */
export function isContiguousSliceKernelInstalled(): boolean {
  return original !== undefined;
}

/** Restores tfjs-wasm's own Slice (tests compare both). */
export function uninstallContiguousSliceKernel(): void {
  if (!original) return;
  tf.unregisterKernel("Slice", "wasm");
  tf.registerKernel(original);
  original = undefined;
}
