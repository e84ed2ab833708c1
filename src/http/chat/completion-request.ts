// Request bodies of /v1/chat/completions and /v1/completions → the generation request serving
// runs (src/serving/generation-request.ts). The JSON schema in openapi.yaml checks types and
// ranges first (400 with `param`); these functions add the rules a schema cannot say (one field
// depending on another, features the engine does not have), with OpenAI's wording where OpenAI
// has one.

import { randomInt } from "node:crypto";
import type { ChatMessage, FunctionTool } from "../../../worker/engine/data/example.js";
import {
  type ChatParams,
  type CommonParams,
  type CompletionParams,
  MAX_SEED,
  type ToolChoice,
} from "../../serving/generation-request.js";
import {
  ANY_OBJECT,
  compileSchema,
  type SchemaNode,
  UnsupportedSchemaError,
} from "../../serving/json-grammar.js";
import { invalidRequest } from "../../store/domain-error.js";

type Body = Record<string, unknown>;

const ROLES = new Set(["system", "developer", "user", "assistant", "tool", "function"]);

function isNullish(v: unknown): v is null | undefined {
  return v === null || v === undefined;
}

function numberOr(body: Body, key: string, fallback: number): number {
  const v = body[key];
  return typeof v === "number" ? v : fallback;
}

function parseStop(body: Body): string[] {
  const stop = body.stop;
  if (isNullish(stop)) return [];
  const list = typeof stop === "string" ? [stop] : Array.isArray(stop) ? stop : null;
  if (list === null || list.some((s) => typeof s !== "string"))
    throw invalidRequest(
      "Invalid value for 'stop': expected a string or an array of strings.",
      "stop",
      "invalid_value",
    );
  if (list.length > 4)
    throw invalidRequest("Invalid 'stop': at most 4 stop sequences are allowed.", "stop", "invalid_value");
  if (list.some((s) => s.length === 0))
    throw invalidRequest("Invalid 'stop': stop sequences must not be empty.", "stop", "invalid_value");
  return list as string[];
}

function parseSeed(body: Body): number {
  const seed = body.seed;
  if (isNullish(seed)) return randomInt(0, 2 ** 48 - 1);
  if (typeof seed !== "number" || !Number.isInteger(seed))
    throw invalidRequest("Invalid value for 'seed': expected an integer.", "seed", "invalid_value");
  if (Math.abs(seed) > MAX_SEED)
    throw invalidRequest(
      `Invalid 'seed': must be between -${MAX_SEED} and ${MAX_SEED}.`,
      "seed",
      "invalid_value",
    );
  return seed;
}

function unsupportedUnless(ok: boolean, param: string, what: string): void {
  if (!ok)
    throw invalidRequest(
      `'${param}' is not supported by this server: ${what}.`,
      param,
      "unsupported_parameter",
    );
}

function parseCommon(body: Body, maxTokensKeys: string[]): CommonParams {
  if (typeof body.model !== "string" || body.model.length === 0)
    throw invalidRequest("Missing required parameter: 'model'.", "model", "missing_required_parameter");
  let maxTokens: number | null = null;
  for (const key of maxTokensKeys) {
    const v = body[key];
    if (isNullish(v)) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
      throw invalidRequest(`Invalid '${key}': expected an integer of at least 1.`, key, "invalid_value");
    maxTokens = maxTokens === null ? v : Math.min(maxTokens, v);
  }
  const n = numberOr(body, "n", 1);
  const stream = body.stream === true;
  const streamOptions = body.stream_options;
  if (!isNullish(streamOptions) && !stream)
    throw invalidRequest(
      "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      "stream_options",
      "invalid_value",
    );
  const penalty = (key: string): number => {
    const v = body[key];
    if (isNullish(v)) return 0;
    if (typeof v !== "number" || !(v >= -2 && v <= 2))
      throw invalidRequest(`Invalid '${key}': expected a number between -2 and 2.`, key, "invalid_value");
    return v;
  };
  let temperature = numberOr(body, "temperature", 1);
  const topP = numberOr(body, "top_p", 1);
  // top_p = 0 keeps only the most likely token: that is greedy decoding
  if (topP === 0) temperature = 0;
  return {
    model: body.model,
    n,
    stream,
    includeUsage: stream && (streamOptions as { include_usage?: unknown } | null)?.include_usage === true,
    maxTokens,
    temperature,
    topP: topP === 0 ? 1 : topP,
    seed: parseSeed(body),
    stop: parseStop(body),
    frequencyPenalty: penalty("frequency_penalty"),
    presencePenalty: penalty("presence_penalty"),
    logitBias: parseLogitBias(body),
  };
}

function parseLogitBias(body: Body): Map<number, number> {
  const raw = body.logit_bias;
  const biases = new Map<number, number>();
  if (isNullish(raw)) return biases;
  if (typeof raw !== "object" || Array.isArray(raw))
    throw invalidRequest(
      "Invalid type for 'logit_bias': expected an object mapping token ids to biases.",
      "logit_bias",
      "invalid_type",
    );
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (!/^(0|[1-9][0-9]{0,9})$/.test(key))
      throw invalidRequest(
        `Invalid key in 'logit_bias': ${JSON.stringify(key)} is not a token id.`,
        "logit_bias",
        "invalid_value",
      );
    if (typeof value !== "number" || !(value >= -100 && value <= 100))
      throw invalidRequest(
        `Invalid value for 'logit_bias' key ${key}: expected a number between -100 and 100.`,
        "logit_bias",
        "invalid_value",
      );
    biases.set(Number(key), value);
  }
  return biases;
}

/** A 400 for a logit_bias id the model's vocabulary does not have. */
export function checkLogitBiasIds(biases: ReadonlyMap<number, number>, vocabSize: number): void {
  for (const id of biases.keys())
    if (id >= vocabSize)
      throw invalidRequest(
        `Invalid key in 'logit_bias': ${id}. Maximum value is ${vocabSize - 1}.`,
        "logit_bias",
        "invalid_value",
      );
}

/** response_format → the grammar replies are held to (null: plain text). */
function parseResponseFormat(raw: unknown): SchemaNode | null {
  if (isNullish(raw)) return null;
  const format = raw as { type?: unknown; json_schema?: { name?: unknown; schema?: unknown } | null };
  if (format.type === "text") return null;
  if (format.type === "json_object") return ANY_OBJECT;
  if (format.type !== "json_schema")
    throw invalidRequest(
      "Invalid value for 'response_format.type': expected 'text', 'json_object' or 'json_schema'.",
      "response_format.type",
      "invalid_value",
    );
  const spec = format.json_schema;
  if (!spec || typeof spec !== "object" || typeof spec.name !== "string")
    throw invalidRequest(
      "Missing required parameter: 'response_format.json_schema.name'.",
      "response_format.json_schema.name",
      "missing_required_parameter",
    );
  try {
    return spec.schema === undefined ? { t: "any" } : compileSchema(spec.schema);
  } catch (err) {
    if (err instanceof UnsupportedSchemaError)
      throw invalidRequest(
        `Invalid schema for response_format '${spec.name}': ${err.message}. Supported keywords: type, properties, required, additionalProperties, items, enum, const, anyOf (and the annotations title, description, default, examples).`,
        "response_format.json_schema.schema",
        "unsupported_schema_keyword",
      );
    throw err;
  }
}

function parseToolChoice(raw: unknown, tools: FunctionTool[] | null): ToolChoice {
  if (isNullish(raw)) return { type: "auto" };
  if (raw === "auto" || raw === "none" || raw === "required") {
    if (raw === "required" && !tools)
      throw invalidRequest(
        "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
        "tool_choice",
        "invalid_value",
      );
    return { type: raw };
  }
  const name = (raw as { type?: unknown; function?: { name?: unknown } } | null)?.function?.name;
  if ((raw as { type?: unknown })?.type !== "function" || typeof name !== "string")
    throw invalidRequest(
      "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": …}}.",
      "tool_choice",
      "invalid_value",
    );
  if (!tools?.some((t) => t.function?.name === name))
    throw invalidRequest(
      `Invalid value for 'tool_choice': no function named '${name}' in 'tools'.`,
      "tool_choice",
      "invalid_value",
    );
  return { type: "function", name };
}

function parseMessage(raw: unknown, i: number): ChatMessage {
  const param = `messages.${i}`;
  if (!raw || typeof raw !== "object" || Array.isArray(raw))
    throw invalidRequest(`Invalid '${param}': expected an object.`, param, "invalid_type");
  const m = raw as Record<string, unknown>;
  if (typeof m.role !== "string" || !ROLES.has(m.role))
    throw invalidRequest(
      `Invalid value for '${param}.role': must be one of 'system', 'developer', 'user', 'assistant', 'tool'.`,
      `${param}.role`,
      "invalid_value",
    );
  const content = m.content;
  if (Array.isArray(content)) {
    content.forEach((part, k) => {
      const p = part as Record<string, unknown> | null;
      if (!p || typeof p !== "object") {
        throw invalidRequest(
          `Invalid '${param}.content.${k}': expected a content part object.`,
          `${param}.content.${k}`,
          "invalid_type",
        );
      }
      if (p.type !== "text" && p.type !== "refusal") {
        throw invalidRequest(
          `'${param}.content.${k}': content parts of type '${String(p.type)}' are not supported (text only).`,
          `${param}.content.${k}.type`,
          "unsupported_value",
        );
      }
      const text = p.type === "text" ? p.text : p.refusal;
      if (typeof text !== "string") {
        throw invalidRequest(
          `Invalid '${param}.content.${k}': expected a string in '${String(p.type)}'.`,
          `${param}.content.${k}`,
          "invalid_type",
        );
      }
    });
  } else if (content === null || content === undefined) {
    const hasCalls = Array.isArray(m.tool_calls) && m.tool_calls.length > 0;
    if (!(m.role === "assistant" && (hasCalls || content === null)))
      throw invalidRequest(
        `Missing required parameter: '${param}.content'.`,
        `${param}.content`,
        "missing_required_parameter",
      );
  } else if (typeof content !== "string") {
    throw invalidRequest(
      `Invalid type for '${param}.content': expected a string or an array of content parts.`,
      `${param}.content`,
      "invalid_type",
    );
  }
  const message: ChatMessage = {
    ...(m as object),
    role: m.role === "function" ? "tool" : m.role,
  } as ChatMessage;
  // A refusal part is what the assistant said: give the template plain text parts.
  if (Array.isArray(content)) {
    message.content = content.map((part) => {
      const p = part as { type: string; text?: string; refusal?: string };
      return { type: "text" as const, text: p.type === "text" ? (p.text as string) : (p.refusal as string) };
    });
  }
  return message;
}

export function parseChatParams(body: Body): ChatParams {
  const common = parseCommon(body, ["max_tokens", "max_completion_tokens"]);
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0)
    throw invalidRequest(
      "Invalid 'messages': empty array. Expected an array with minimum length 1.",
      "messages",
      "empty_array",
    );
  const logprobs = body.logprobs === true;
  const topLogprobs = body.top_logprobs;
  if (!isNullish(topLogprobs) && !logprobs)
    throw invalidRequest(
      "Invalid value for 'top_logprobs': 'logprobs' must be true to use 'top_logprobs'.",
      "top_logprobs",
      "invalid_value",
    );
  const listed = Array.isArray(body.tools) && body.tools.length > 0 ? (body.tools as FunctionTool[]) : null;
  const toolChoice = parseToolChoice(body.tool_choice, listed);
  return {
    ...common,
    messages: messages.map(parseMessage),
    tools: toolChoice.type === "none" ? null : listed,
    toolChoice,
    parallelToolCalls: body.parallel_tool_calls !== false,
    responseFormat: parseResponseFormat(body.response_format),
    logprobs,
    topLogprobs: typeof topLogprobs === "number" ? topLogprobs : 0,
  };
}

function parsePrompts(prompt: unknown): (string | number[])[] {
  const invalid = () =>
    invalidRequest(
      "Invalid value for 'prompt': expected a string, an array of strings, an array of token ids or an array of arrays of token ids.",
      "prompt",
      "invalid_value",
    );
  if (typeof prompt === "string") return [prompt];
  if (!Array.isArray(prompt) || prompt.length === 0) throw invalid();
  if (prompt.every((p) => typeof p === "string")) return prompt as string[];
  const isIds = (a: unknown): a is number[] =>
    Array.isArray(a) && a.length > 0 && a.every((t) => Number.isInteger(t) && (t as number) >= 0);
  if (isIds(prompt)) return [prompt];
  if (prompt.every(isIds)) return prompt as number[][];
  throw invalid();
}

/** Batch caps of /v1/completions: a request is one batch, not a queue. */
export const MAX_PROMPTS = 128;
export const MAX_CHOICES = 128;

function checkBatch(prompts: unknown[], n: number): void {
  if (prompts.length > MAX_PROMPTS)
    throw invalidRequest(
      `Invalid 'prompt': at most ${MAX_PROMPTS} prompts are allowed per request.`,
      "prompt",
      "invalid_value",
    );
  if (prompts.length * n > MAX_CHOICES)
    throw invalidRequest(
      `Invalid 'n': ${prompts.length} prompts × n=${n} asks for more than ${MAX_CHOICES} choices in one request.`,
      "n",
      "invalid_value",
    );
}

export function parseCompletionParams(body: Body): CompletionParams {
  const common = parseCommon(body, ["max_tokens"]);
  if (isNullish(body.max_tokens)) common.maxTokens = 16; // OpenAI's default for completions
  if (isNullish(body.prompt))
    throw invalidRequest("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter");
  const bestOf = body.best_of;
  unsupportedUnless(
    isNullish(bestOf) || bestOf === 1 || bestOf === common.n,
    "best_of",
    "only best_of = n is implemented",
  );
  unsupportedUnless(isNullish(body.suffix) || body.suffix === "", "suffix", "insertion is not implemented");
  const logprobs = body.logprobs;
  const prompts = parsePrompts(body.prompt);
  checkBatch(prompts, common.n);
  return {
    ...common,
    prompts,
    echo: body.echo === true,
    logprobs: typeof logprobs === "number" ? logprobs : null,
  };
}
