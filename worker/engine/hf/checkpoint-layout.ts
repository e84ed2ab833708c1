// The tensor names and shapes a LLaMA-family checkpoint holds for a given config, exactly as
// transformers' state_dict names them (a tied LM head is absent, as save_pretrained omits it).

import type { ModelConfig } from "./config.js";

/** HF state-dict names with their shapes, in file order. */
export function expectedWeightShapes(config: ModelConfig): Map<string, number[]> {
  const {
    hiddenSize: D,
    intermediateSize: F,
    numHeads: H,
    numKvHeads: Hkv,
    headDim: dh,
    vocabSize: V,
  } = config;
  const shapes = new Map<string, number[]>();
  shapes.set("model.embed_tokens.weight", [V, D]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    shapes.set(`${p}.input_layernorm.weight`, [D]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [D]);
    const proj = (name: string, out: number, inF: number, bias: boolean) => {
      shapes.set(`${p}.${name}.weight`, [out, inF]);
      if (bias) shapes.set(`${p}.${name}.bias`, [out]);
    };
    proj("self_attn.q_proj", H * dh, D, config.qkvBias);
    proj("self_attn.k_proj", Hkv * dh, D, config.qkvBias);
    proj("self_attn.v_proj", Hkv * dh, D, config.qkvBias);
    proj("self_attn.o_proj", D, H * dh, config.oBias);
    proj("mlp.gate_proj", F, D, config.mlpBias);
    proj("mlp.up_proj", F, D, config.mlpBias);
    proj("mlp.down_proj", D, F, config.mlpBias);
  }
  shapes.set("model.norm.weight", [D]);
  if (!config.tieWordEmbeddings) shapes.set("lm_head.weight", [V, D]);
  return shapes;
}
