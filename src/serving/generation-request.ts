// What a completion request asks the engine to generate, once its body is parsed and checked
// (src/http/chat/completion-request.ts): the typed generation request serving runs.
import type { ChatMessage, FunctionTool } from "../../worker/engine/data/example.js";
import type { SchemaNode } from "./json-grammar.js";

/** Seeds are below this; a choice's own seed stays below it too. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

export interface CommonParams {
  model: string;
  n: number;
  stream: boolean;
  includeUsage: boolean;
  /** null = until the context is full */
  maxTokens: number | null;
  temperature: number;
  topP: number;
  /** the request's seed, or a random one (each choice derives its own from it) */
  seed: number;
  stop: string[];
  /** -2..2 */
  frequencyPenalty: number;
  /** -2..2 */
  presencePenalty: number;
  /** token id → bias (-100..100); ids are checked against the vocabulary once the model is known */
  logitBias: Map<number, number>;
}

/** What the model may do with `tools`: OpenAI's tool_choice. */
export type ToolChoice =
  | { type: "auto" }
  | { type: "none" }
  | { type: "required" }
  | { type: "function"; name: string };

export interface ChatParams extends CommonParams {
  messages: ChatMessage[];
  /** tools shown to the model (null when none, or tool_choice is "none") */
  tools: FunctionTool[] | null;
  toolChoice: ToolChoice;
  parallelToolCalls: boolean;
  /** the JSON the reply must be (constrained decoding), or null for free text */
  responseFormat: SchemaNode | null;
  logprobs: boolean;
  topLogprobs: number;
}

export interface CompletionParams extends CommonParams {
  /** one entry per prompt: text, or token ids */
  prompts: (string | number[])[];
  echo: boolean;
  /** null = no logprobs; 0–5 alternatives per token */
  logprobs: number | null;
}

/** The seed choice `index` samples with: different per choice, fixed by the request's seed. */
export function choiceSeed(seed: number, index: number): number {
  return index === 0 ? seed : (seed + index * 0x9e3779b1) % MAX_SEED;
}
