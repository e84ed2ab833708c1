// Divergence: a NaN/inf loss, or one that exploded above the first step's, ends the run with
// an error that tells the user what to change.

export class TrainingDivergedError extends Error {
  constructor(
    readonly step: number,
    readonly loss: number,
    readonly initialLoss: number | null,
    readonly learningRateMultiplier: number,
  ) {
    const what = Number.isFinite(loss)
      ? `the training loss rose to ${loss.toFixed(4)} from ${initialLoss?.toFixed(4)} at the first step`
      : `the training loss became ${loss}`;
    super(
      `Training diverged at step ${step}: ${what}. ` +
        `Lower the learning_rate_multiplier (it was ${learningRateMultiplier}) and try again.`,
    );
    this.name = "TrainingDivergedError";
  }
}

/**
 * The explosion half of the divergence check: above `factor` × the first step's loss, and at
 * least 3 nats above it, so a first loss near 0 does not make ordinary batch noise fatal.
 */
export function lossExploded(loss: number, initialLoss: number, factor: number): boolean {
  return loss > Math.max(factor * initialLoss, initialLoss + 3);
}
