// The LoRA adapter a model trains and saves (PEFT's "default" adapter): attaching a fresh one or
// loading a PEFT folder makes its pairs the model's trainable parameters, detaching frees it.
// Other adapters (serving's) are never attached: passes take them as an option.

import type * as tf from "@tensorflow/tfjs-core";
import { readAdapter, saveAdapter } from "../lora/adapter-io.js";
import { injectAdapter } from "../lora/inject-adapter.js";
import { adapterStateDict, disposeAdapter, type LoraAdapter } from "../lora/lora-adapter.js";
import { type LoraOptions, type LoraSettings, resolveLoraSettings } from "../lora/lora-config.js";
import type { LoraLinear } from "../lora/lora-layer.js";
import { seedStreams } from "./seed-streams.js";

export class OwnAdapter {
  private current: LoraAdapter | null = null;

  constructor(
    /** the model's trainable parameters, which the adapter's pairs join */
    private readonly trainableParams: Map<string, tf.Variable>,
    private readonly projections: () => LoraLinear[],
    private readonly fullFinetune: boolean,
  ) {}

  get adapter(): LoraAdapter | null {
    return this.current;
  }

  /** A fresh adapter (A kaiming-uniform from `seed`, unless the options give one; B = 0). */
  attach(options: LoraOptions, seed: number): LoraSettings {
    this.assertLoraAllowed();
    this.detach();
    const settings = resolveLoraSettings(options);
    const initRng = seedStreams(options.seed ?? seed).loraInit;
    this.use(injectAdapter(this.projections(), settings, initRng));
    return settings;
  }

  /** A PEFT adapter folder (ours or PEFT's), replacing any attached now. */
  async load(dir: string): Promise<LoraSettings> {
    this.assertLoraAllowed();
    this.detach();
    const adapter = await readAdapter(this.projections(), dir, { name: "default", trainable: true });
    this.use(adapter);
    return adapter.settings;
  }

  async save(dir: string, baseModelName: string): Promise<void> {
    if (!this.current) throw new Error("saveAdapter: the model has no LoRA adapter attached");
    await saveAdapter(this.current, dir, baseModelName);
  }

  detach(): void {
    if (this.current) disposeAdapter(this.current);
    this.current = null;
    if (!this.fullFinetune) this.trainableParams.clear();
  }

  private assertLoraAllowed(): void {
    if (this.fullFinetune)
      throw new Error("LoRA and full fine-tuning are exclusive: load the model without fullFinetune");
  }

  private use(adapter: LoraAdapter): void {
    this.current = adapter;
    for (const [name, variable] of adapterStateDict(adapter)) this.trainableParams.set(name, variable);
  }
}
