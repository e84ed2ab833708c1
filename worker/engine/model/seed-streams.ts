import { Rng } from "../train/rng.js";

/** Two independent streams from one seed, so LoRA's init and dropout masks never share draws. */
export function seedStreams(seed: number): { loraInit: Rng; dropout: Rng } {
  const root = Rng.fromSeed(seed);
  return { loraInit: Rng.fromSeed(root.nextSeed()), dropout: Rng.fromSeed(root.nextSeed()) };
}
