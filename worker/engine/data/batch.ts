// The one shape that leaves the data pipeline and enters the model: a batch of rows of
// equal length, flat row-major [batchSize * seqLen]. Packed and padded batches share it.

export const IGNORE_INDEX = -100;

export interface TokenBatch {
  batchSize: number;
  seqLen: number;
  /** token ids; padding slots hold the pad id */
  inputIds: Int32Array;
  /**
   * Hugging Face convention, not pre-shifted: the logits at t are scored against labels[t + 1].
   * IGNORE_INDEX (-100) everywhere that is not trained, including padding and the first token
   * of every packed segment, so no label crosses a segment boundary.
   */
  labels: Int32Array;
  /** restart at 0 at the start of every segment */
  positionIds: Int32Array;
  /**
   * Segment index within its row (0, 1, 2, …); -1 for padding. Attention is allowed from
   * query q to key k iff same row, segmentIds equal and != -1, k <= q (and q - k < window
   * for sliding-window models). A padding query attends only to itself (its output is unused).
   */
  segmentIds: Int32Array;
}
