// For one request: the runtime (tokenizer, template, stop ids, context length) and the model to
// generate with — the base model, the base model seen through a tuned model's adapter, or a fully
// fine-tuned model — held until release() (a cached adapter is not freed while in use).

import type { BaseModelRuntime, ChatModelServer } from "./model-server.js";
import type { DecodeTarget } from "./run-choice.js";
import type { ServedModel } from "./served-model.js";
import { systemFingerprint } from "./system-fingerprint.js";

export interface ServingSession {
  runtime: BaseModelRuntime;
  /** the weights to decode with: a shared base and this request's adapter, or a full model */
  model: DecodeTarget;
  /** `system_fingerprint` of the answers: the decoding code, base model and tuned weights */
  fingerprint: string;
  release(): void;
}

export async function openServingSession(
  server: ChatModelServer,
  served: ServedModel,
): Promise<ServingSession> {
  const base = await server.base(served.base.id, served.base.dir);
  const fingerprint = systemFingerprint(served.base.id, served.tuned?.key ?? null);
  if (!served.tuned)
    return { runtime: base, model: { model: base.model, adapter: null }, fingerprint, release: () => {} };
  const lease = await server.tuned(base, served.tuned);
  const weights = lease.value;
  if (weights.kind === "full")
    return {
      runtime: weights.runtime,
      model: { model: weights.runtime.model, adapter: null },
      fingerprint,
      release: lease.release,
    };
  return {
    runtime: base,
    model: { model: base.model, adapter: weights.adapter },
    fingerprint,
    release: lease.release,
  };
}
