// For one request: the runtime (tokenizer, template, stop ids, context length) and the model to
// generate with — the base model, the base model seen through a tuned model's adapter, or a fully
// fine-tuned model — held until release() (a cached adapter is not freed while in use).

import type { CausalLM } from "../../worker/engine/model/decoder.js";
import { adapterView } from "./adapter-view.js";
import type { BaseModelRuntime, ChatModelServer } from "./model-server.js";
import type { ServedModel } from "./served-model.js";
import { systemFingerprint } from "./system-fingerprint.js";

export interface ServingSession {
  runtime: BaseModelRuntime;
  model: CausalLM;
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
    return { runtime: base, model: adapterView(base.model, null), fingerprint, release: () => {} };
  const lease = await server.tuned(base, served.tuned);
  const weights = lease.value;
  if (weights.kind === "full")
    return { runtime: weights.runtime, model: weights.runtime.model, fingerprint, release: lease.release };
  return {
    runtime: base,
    model: adapterView(base.model, weights.adapter),
    fingerprint,
    release: lease.release,
  };
}
