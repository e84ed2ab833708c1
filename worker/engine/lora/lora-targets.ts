// The linear layers LoRA can adapt, in PEFT's module names. Kept apart from lora.ts (which needs
// tfjs) so the API can validate `target_modules` without loading the engine's tensor code.
export const LORA_TARGET_MODULES = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
] as const;
export type LoraTargetModule = (typeof LORA_TARGET_MODULES)[number];
