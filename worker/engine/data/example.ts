// The training-example shapes we accept, one per JSONL line (docs/training.md, "Data formats").
// Chat and preference follow OpenAI's fine-tuning input schemas; prompt/completion and
// text are our extensions. This file is the one definition of these shapes: the upload
// validator (src/files) and the data pipeline (worker/engine/data) both import it.

export type Role = "system" | "developer" | "user" | "assistant" | "tool";

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** A content part; only text parts are trained on (image parts are refused by the validator). */
export interface TextContentPart {
  type: "text";
  text: string;
}

export interface ChatMessage {
  role: Role;
  content?: string | TextContentPart[] | null;
  name?: string;
  tool_calls?: ToolCall[];
  /** tool messages: the id of the call they answer */
  tool_call_id?: string;
  /** assistant messages only: 0 = keep in context but do not train, 1 (default) = train */
  weight?: 0 | 1;
}

export interface FunctionTool {
  type: "function";
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean };
}

export interface ChatExample {
  messages: ChatMessage[];
  tools?: FunctionTool[];
  parallel_tool_calls?: boolean;
}

export interface PreferenceExample {
  input: { messages: ChatMessage[]; tools?: FunctionTool[]; parallel_tool_calls?: boolean };
  preferred_output: ChatMessage[];
  non_preferred_output: ChatMessage[];
}

export interface PromptCompletionExample {
  prompt: string;
  completion: string;
}

export interface TextExample {
  text: string;
}

export type ExampleFormat = "chat" | "preference" | "prompt_completion" | "text";

export type Example =
  | { format: "chat"; example: ChatExample }
  | { format: "preference"; example: PreferenceExample }
  | { format: "prompt_completion"; example: PromptCompletionExample }
  | { format: "text"; example: TextExample };
