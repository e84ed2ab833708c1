// What chat completions run on: one copy of each base model in memory (loaded on first use and
// kept), plus the weights of tuned models loaded on demand and kept in a least-recently-used
// cache of ADAPTER_CACHE_SIZE entries. A LoRA entry is only its adapter (a few MB at rank 8,
// sharing the base model's weights), so a hundred tuned models of one base cost one base model
// plus the adapters in use; a full fine-tune's entry is a whole model of its own.
//
//   const server = new ChatModelServer({ adapterCacheSize: 16 });
//   const base = await server.base("tiny-chatml", "/models/tiny-chatml");
//   const lease = await server.tuned(base, { key: blobId, materialize: async () => ({ dir }) });
//   lease.value.kind === "adapter" ? { model: base.model, adapter: lease.value.adapter } : { model: lease.value.runtime.model, adapter: null }
//   lease.release();

import { stat } from "node:fs/promises";
import path from "node:path";
import { initBackend } from "../../worker/engine/backend/backend.js";
import { type ChatTemplate, resolveChatTemplate } from "../../worker/engine/hf/chat-template.js";
import { readEosTokenIds } from "../../worker/engine/hf/model-folder.js";
import { type HfTokenizer, loadTokenizer } from "../../worker/engine/hf/tokenizer.js";
import { ADAPTER_CONFIG_FILE } from "../../worker/engine/lora/adapter-io.js";
import type { CausalLM } from "../../worker/engine/model/causal-lm.js";
import { loadModel } from "../../worker/engine/model/load-model.js";
import { type Lease, RefCountedLru } from "./lru-cache.js";
import { readServedAdapter, type ServedAdapter } from "./served-adapter.js";

export const DEFAULT_ADAPTER_CACHE_SIZE = 16;

export interface BaseModelRuntime {
  id: string;
  folder: string;
  model: CausalLM;
  tokenizer: HfTokenizer;
  /** the folder's chat template (ChatML when it has none) */
  template: ChatTemplate;
  /** ids that end a turn: eos, generation_config's eos ids, known end-of-turn tokens */
  stopIds: ReadonlySet<number>;
  /** positions the model can attend over (prompt + completion) */
  contextLength: number;
}

/** A tuned model's weights: a LoRA adapter over its base, or a whole fully fine-tuned model. */
export type TunedWeights =
  | { kind: "adapter"; adapter: ServedAdapter }
  | { kind: "full"; runtime: BaseModelRuntime };

export interface AdapterSource {
  /** identifies the adapter's bytes: the same key must always mean the same weights */
  key: string;
  /**
   * The tuned model's files in a folder: a PEFT adapter (adapter_config.json), or a full model
   * (config.json + model.safetensors). `cleanup` (if given) runs once they are read.
   */
  materialize(): Promise<{ dir: string; cleanup?: () => Promise<void> }>;
}

export class ChatModelServer {
  private readonly bases = new Map<string, Promise<BaseModelRuntime>>();
  private readonly tunedCache: RefCountedLru<string, TunedWeights>;
  private closed = false;

  constructor(opts: { adapterCacheSize?: number } = {}) {
    this.tunedCache = new RefCountedLru(opts.adapterCacheSize ?? DEFAULT_ADAPTER_CACHE_SIZE, (w) =>
      w.kind === "adapter" ? w.adapter.dispose() : w.runtime.model.dispose(),
    );
  }

  /** keys of cached tuned weights, least recently used first (for tests and diagnostics) */
  cachedTunedKeys(): string[] {
    return this.tunedCache.keys();
  }

  loadedBaseIds(): string[] {
    return [...this.bases.keys()];
  }

  base(id: string, folder: string): Promise<BaseModelRuntime> {
    if (this.closed) throw new Error("the chat model server is closed");
    let pending = this.bases.get(id);
    if (!pending) {
      pending = loadRuntime(id, folder);
      // a failed load is not cached: the next request tries again (the folder may be fixed)
      pending.catch(() => this.bases.delete(id));
      this.bases.set(id, pending);
    }
    return pending;
  }

  async tuned(base: BaseModelRuntime, source: AdapterSource): Promise<Lease<TunedWeights>> {
    // an adapter's tensors are shaped for one base: the key includes it
    return this.tunedCache.acquire(`${base.id}\u0000${source.key}`, async () => {
      const { dir, cleanup } = await source.materialize();
      try {
        if (await isFile(path.join(dir, ADAPTER_CONFIG_FILE)))
          return { kind: "adapter", adapter: await readServedAdapter(base.model, dir, source.key) };
        if (await isFile(path.join(dir, "config.json")))
          return { kind: "full", runtime: await loadRuntime(source.key, dir, base.folder) };
        throw new Error(
          `tuned model ${source.key}: neither ${ADAPTER_CONFIG_FILE} nor config.json in its files`,
        );
      } finally {
        await cleanup?.();
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.tunedCache.clear();
    const loaded = await Promise.allSettled(this.bases.values());
    this.bases.clear();
    for (const r of loaded) if (r.status === "fulfilled") r.value.model.dispose();
  }
}

async function isFile(file: string): Promise<boolean> {
  return stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** `tokenizerFolder`: where the tokenizer and template come from (a full fine-tune uses its base's). */
async function loadRuntime(id: string, folder: string, tokenizerFolder = folder): Promise<BaseModelRuntime> {
  await initBackend();
  const [model, tokenizer] = await Promise.all([loadModel(folder), loadTokenizer(tokenizerFolder)]);
  const stopIds = new Set(tokenizer.stopIds);
  for (const eos of await readEosTokenIds(folder, model.config)) stopIds.add(eos);
  const template = resolveChatTemplate(tokenizer.chatTemplate, { specialTokens: tokenizer.specialTokensMap });
  return {
    id,
    folder,
    model,
    tokenizer,
    template,
    stopIds,
    contextLength: model.config.maxPositionEmbeddings,
  };
}
