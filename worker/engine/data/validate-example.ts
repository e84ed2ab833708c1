// Checks one parsed JSONL value against the training-example shapes of ./example.ts and
// says precisely what is wrong and where. The upload validator (src/files) runs it on every
// line while a file streams in, and the data pipeline runs it again at training time, so it
// is strict: whatever it accepts, the pipeline can render and train on without guessing.
//
// Codes follow the OpenAI cookbook's format checks where one exists (missing_messages_list,
// message_missing_key, message_unrecognized_key, unrecognized_role, missing_content,
// example_missing_assistant_message) and the same snake_case style elsewhere.
import type {
  ChatExample,
  Example,
  PreferenceExample,
  PromptCompletionExample,
  Role,
  TextExample,
} from "./example.js";

export interface ExampleProblem {
  code: string;
  message: string;
}

export type ExampleValidation = { ok: true; example: Example } | ({ ok: false } & ExampleProblem);

type Obj = Record<string, unknown>;

const ROLES: readonly Role[] = ["system", "developer", "user", "assistant", "tool"];
const MESSAGE_KEYS = ["role", "content", "name", "tool_calls", "tool_call_id", "weight"];
const CHAT_KEYS = ["messages", "tools", "parallel_tool_calls"];
const PREFERENCE_KEYS = ["input", "preferred_output", "non_preferred_output"];
const PREFERENCE_INPUT_KEYS = ["messages", "tools", "parallel_tool_calls"];
const PROMPT_COMPLETION_KEYS = ["prompt", "completion"];
const TEXT_KEYS = ["text"];
const TOOL_CALL_KEYS = ["id", "type", "function"];
const TOOL_CALL_FUNCTION_KEYS = ["name", "arguments"];
const TOOL_KEYS = ["type", "function"];
const TOOL_FUNCTION_KEYS = ["name", "description", "parameters", "strict"];
const TEXT_PART_KEYS = ["type", "text"];
const IMAGE_PART_TYPES = new Set(["image_url", "input_image", "image"]);

/** How a message list is being checked: chat examples allow `weight`, preference examples do not. */
interface MessageContext {
  weightAllowed: boolean;
  /** ids of tool calls made by earlier assistant messages, which tool messages must answer */
  toolCallIds: Set<string>;
}

interface MessageTally {
  assistant: number;
  trained: number;
}

export function validateExample(value: unknown): ExampleValidation {
  if (!isObject(value)) {
    return fail("not_an_object", `an example must be a JSON object (got ${typeName(value)})`);
  }
  let problem: ExampleProblem | undefined;
  if (has(value, "messages")) {
    problem = checkChat(value);
    return problem
      ? { ok: false, ...problem }
      : ok({ format: "chat", example: value as unknown as ChatExample });
  }
  if (has(value, "input") || has(value, "preferred_output") || has(value, "non_preferred_output")) {
    problem = checkPreference(value);
    return problem
      ? { ok: false, ...problem }
      : ok({ format: "preference", example: value as unknown as PreferenceExample });
  }
  if (has(value, "prompt") || has(value, "completion")) {
    problem = checkPromptCompletion(value);
    return problem
      ? { ok: false, ...problem }
      : ok({ format: "prompt_completion", example: value as unknown as PromptCompletionExample });
  }
  if (has(value, "text")) {
    problem = checkText(value);
    return problem
      ? { ok: false, ...problem }
      : ok({ format: "text", example: value as unknown as TextExample });
  }
  const keys = Object.keys(value);
  return fail(
    "unrecognized_format",
    "the example matches no training format: expected messages (chat), input + preferred_output + " +
      `non_preferred_output (preference), prompt + completion, or text (found ${
        keys.length ? `keys ${keys.map((k) => JSON.stringify(k)).join(", ")}` : "an empty object"
      })`,
  );
}

function checkChat(value: Obj): ExampleProblem | undefined {
  const unknown = firstUnknownKey(value, CHAT_KEYS);
  if (unknown !== undefined) return unrecognizedKey(unknown, "a chat example", CHAT_KEYS);
  const messages = value.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    return problemOf(
      "missing_messages_list",
      Array.isArray(messages)
        ? "messages is empty: a chat example needs at least one user and one assistant message"
        : `messages must be a non-empty array of messages (got ${typeName(messages)})`,
    );
  }
  const tally: MessageTally = { assistant: 0, trained: 0 };
  const context: MessageContext = { weightAllowed: true, toolCallIds: new Set() };
  for (let i = 0; i < messages.length; i++) {
    const problem = checkMessage(messages[i], `messages[${i}]`, context, tally);
    if (problem) return problem;
  }
  if (tally.assistant === 0) {
    return problemOf("example_missing_assistant_message", "the example has no assistant message to train on");
  }
  if (tally.trained === 0) {
    return problemOf(
      "example_missing_trainable_assistant_message",
      "every assistant message has weight 0: at least one needs weight 1 (the default) to train on",
    );
  }
  return checkToolsAndParallel(value, "");
}

function checkPreference(value: Obj): ExampleProblem | undefined {
  const unknown = firstUnknownKey(value, PREFERENCE_KEYS);
  if (unknown !== undefined) return unrecognizedKey(unknown, "a preference example", PREFERENCE_KEYS);
  for (const key of PREFERENCE_KEYS) {
    if (!has(value, key)) {
      return problemOf(
        "missing_preference_key",
        `a preference example needs input, preferred_output and non_preferred_output (${key} is missing)`,
      );
    }
  }
  const input = value.input;
  if (!isObject(input)) {
    return problemOf("invalid_input", `input must be an object with messages (got ${typeName(input)})`);
  }
  const unknownInput = firstUnknownKey(input, PREFERENCE_INPUT_KEYS);
  if (unknownInput !== undefined) return unrecognizedKey(unknownInput, "input", PREFERENCE_INPUT_KEYS);
  const messages = input.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    return problemOf(
      "missing_messages_list",
      Array.isArray(messages)
        ? "input.messages is empty: a preference example needs at least one prompt message"
        : `input.messages must be a non-empty array of messages (got ${typeName(messages)})`,
    );
  }
  const context: MessageContext = { weightAllowed: false, toolCallIds: new Set() };
  const tally: MessageTally = { assistant: 0, trained: 0 };
  for (let i = 0; i < messages.length; i++) {
    const problem = checkMessage(messages[i], `input.messages[${i}]`, context, tally);
    if (problem) return problem;
  }
  const toolsProblem = checkToolsAndParallel(input, "input.");
  if (toolsProblem) return toolsProblem;
  for (const key of ["preferred_output", "non_preferred_output"] as const) {
    const problem = checkPreferenceOutput(value[key], key, context);
    if (problem) return problem;
  }
  return undefined;
}

/** preferred_output / non_preferred_output: exactly one assistant message, as OpenAI's DPO format has it. */
function checkPreferenceOutput(
  output: unknown,
  key: string,
  context: MessageContext,
): ExampleProblem | undefined {
  const code = `invalid_${key}`;
  if (!Array.isArray(output) || output.length !== 1) {
    return problemOf(
      code,
      `${key} must be an array of exactly one assistant message (got ${
        Array.isArray(output) ? `${output.length} messages` : typeName(output)
      })`,
    );
  }
  const message = output[0];
  if (isObject(message) && has(message, "role") && message.role !== "assistant") {
    return problemOf(code, `${key}[0].role must be "assistant" (got ${preview(message.role)})`);
  }
  return checkMessage(message, `${key}[0]`, context, { assistant: 0, trained: 0 });
}

function checkPromptCompletion(value: Obj): ExampleProblem | undefined {
  const unknown = firstUnknownKey(value, PROMPT_COMPLETION_KEYS);
  if (unknown !== undefined) {
    return unrecognizedKey(unknown, "a prompt/completion example", PROMPT_COMPLETION_KEYS);
  }
  if (!has(value, "prompt"))
    return problemOf("missing_prompt", "prompt is missing (an empty string is allowed)");
  if (typeof value.prompt !== "string") {
    return problemOf("invalid_prompt", `prompt must be a string (got ${typeName(value.prompt)})`);
  }
  if (!has(value, "completion")) return problemOf("missing_completion", "completion is missing");
  if (typeof value.completion !== "string") {
    return problemOf("invalid_completion", `completion must be a string (got ${typeName(value.completion)})`);
  }
  if (value.completion.length === 0) {
    return problemOf("missing_completion", "completion is empty: there is nothing to train on");
  }
  return undefined;
}

function checkText(value: Obj): ExampleProblem | undefined {
  const unknown = firstUnknownKey(value, TEXT_KEYS);
  if (unknown !== undefined) return unrecognizedKey(unknown, "a text example", TEXT_KEYS);
  if (typeof value.text !== "string") {
    return problemOf("invalid_text", `text must be a string (got ${typeName(value.text)})`);
  }
  if (value.text.length === 0)
    return problemOf("missing_text", "text is empty: there is nothing to train on");
  return undefined;
}

function checkMessage(
  message: unknown,
  path: string,
  context: MessageContext,
  tally: MessageTally,
): ExampleProblem | undefined {
  if (!isObject(message)) {
    return problemOf("invalid_message", `${path} must be an object (got ${typeName(message)})`);
  }
  if (!has(message, "role")) return problemOf("message_missing_key", `${path} has no role`);
  const role = message.role;
  if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) {
    return problemOf(
      "unrecognized_role",
      `${path}.role must be one of ${ROLES.join(", ")} (got ${preview(role)})` +
        (role === "function" ? ': the deprecated "function" role is not supported, use "tool"' : ""),
    );
  }
  const keyProblem = checkMessageKeys(message, path, role as Role, context);
  if (keyProblem) return keyProblem;

  if (has(message, "name") && (typeof message.name !== "string" || message.name.length === 0)) {
    return problemOf(
      "invalid_name",
      `${path}.name must be a non-empty string (got ${preview(message.name)})`,
    );
  }

  let hasToolCalls = false;
  if (role === "assistant") {
    tally.assistant++;
    if (has(message, "weight")) {
      const weight = message.weight;
      if (weight !== 0 && weight !== 1) {
        return problemOf("invalid_weight", `${path}.weight must be 0 or 1 (got ${preview(weight)})`);
      }
      if (weight === 1) tally.trained++;
    } else {
      tally.trained++;
    }
    if (has(message, "tool_calls")) {
      const problem = checkToolCalls(message.tool_calls, `${path}.tool_calls`, context);
      if (problem) return problem;
      hasToolCalls = true;
    }
  }
  if (role === "tool") {
    const id = message.tool_call_id;
    if (!has(message, "tool_call_id")) {
      return problemOf("missing_tool_call_id", `${path}: tool messages need a tool_call_id`);
    }
    if (typeof id !== "string" || id.length === 0) {
      return problemOf(
        "invalid_tool_call_id",
        `${path}.tool_call_id must be a non-empty string (got ${preview(id)})`,
      );
    }
    if (!context.toolCallIds.has(id)) {
      return problemOf(
        "unknown_tool_call_id",
        `${path}.tool_call_id ${preview(id)} matches no tool call of an earlier assistant message`,
      );
    }
  }
  return checkContent(message, path, role as Role, hasToolCalls);
}

/** Unknown keys are refused, and keys that belong to another role are named as such. */
function checkMessageKeys(
  message: Obj,
  path: string,
  role: Role,
  context: MessageContext,
): ExampleProblem | undefined {
  for (const key of Object.keys(message)) {
    if (!MESSAGE_KEYS.includes(key)) {
      const hint =
        key === "function_call"
          ? ": function_call is deprecated and not supported, use tool_calls"
          : ` (allowed: ${MESSAGE_KEYS.join(", ")})`;
      return problemOf("message_unrecognized_key", `${path}: unrecognized key ${JSON.stringify(key)}${hint}`);
    }
  }
  if (has(message, "weight")) {
    if (!context.weightAllowed) {
      return problemOf(
        "invalid_weight",
        `${path}: weight is not used in preference examples (the preferred and non-preferred outputs are what is trained)`,
      );
    }
    if (role !== "assistant") {
      return problemOf("invalid_weight", `${path}: weight is only allowed on assistant messages`);
    }
  }
  if (has(message, "tool_calls") && role !== "assistant") {
    return problemOf("invalid_tool_calls", `${path}: tool_calls is only allowed on assistant messages`);
  }
  if (has(message, "tool_call_id") && role !== "tool") {
    return problemOf("invalid_tool_call_id", `${path}: tool_call_id is only allowed on tool messages`);
  }
  if (has(message, "name") && role === "tool") {
    return problemOf("message_unrecognized_key", `${path}: name is not allowed on tool messages`);
  }
  return undefined;
}

function checkToolCalls(
  toolCalls: unknown,
  path: string,
  context: MessageContext,
): ExampleProblem | undefined {
  if (!Array.isArray(toolCalls) || toolCalls.length === 0) {
    return problemOf(
      "invalid_tool_calls",
      `${path} must be a non-empty array of tool calls (got ${
        Array.isArray(toolCalls) ? "an empty array" : typeName(toolCalls)
      })`,
    );
  }
  for (let i = 0; i < toolCalls.length; i++) {
    const call = toolCalls[i];
    const at = `${path}[${i}]`;
    if (!isObject(call))
      return problemOf("invalid_tool_call", `${at} must be an object (got ${typeName(call)})`);
    const unknown = firstUnknownKey(call, TOOL_CALL_KEYS);
    if (unknown !== undefined) {
      return problemOf(
        "invalid_tool_call",
        `${at}: unrecognized key ${JSON.stringify(unknown)} (allowed: ${TOOL_CALL_KEYS.join(", ")})`,
      );
    }
    if (typeof call.id !== "string" || call.id.length === 0) {
      return problemOf("invalid_tool_call", `${at}.id must be a non-empty string (got ${preview(call.id)})`);
    }
    if (call.type !== "function") {
      return problemOf("invalid_tool_call", `${at}.type must be "function" (got ${preview(call.type)})`);
    }
    const fn = call.function;
    if (!isObject(fn)) {
      return problemOf("invalid_tool_call", `${at}.function must be an object (got ${typeName(fn)})`);
    }
    const unknownFn = firstUnknownKey(fn, TOOL_CALL_FUNCTION_KEYS);
    if (unknownFn !== undefined) {
      return problemOf(
        "invalid_tool_call",
        `${at}.function: unrecognized key ${JSON.stringify(unknownFn)} (allowed: name, arguments)`,
      );
    }
    if (typeof fn.name !== "string" || fn.name.length === 0) {
      return problemOf(
        "invalid_tool_call",
        `${at}.function.name must be a non-empty string (got ${preview(fn.name)})`,
      );
    }
    if (typeof fn.arguments !== "string") {
      return problemOf(
        "invalid_tool_call_arguments",
        `${at}.function.arguments must be a string holding JSON, e.g. "{\\"city\\":\\"Paris\\"}" (got ${typeName(fn.arguments)})`,
      );
    }
    // The model learns to emit these bytes verbatim; text that is not JSON would teach it broken calls.
    try {
      JSON.parse(fn.arguments);
    } catch (error) {
      return problemOf(
        "invalid_tool_call_arguments",
        `${at}.function.arguments is not valid JSON: ${shorten((error as Error).message, 120)}`,
      );
    }
    context.toolCallIds.add(call.id);
  }
  return undefined;
}

function checkContent(
  message: Obj,
  path: string,
  role: Role,
  hasToolCalls: boolean,
): ExampleProblem | undefined {
  const content = message.content;
  // An assistant turn that only calls tools has no text: OpenAI sends content null (or leaves it out).
  if (content === undefined || content === null) {
    if (hasToolCalls) return undefined;
    if (!has(message, "content")) {
      return problemOf(
        "message_missing_key",
        role === "assistant" ? `${path} has no content and no tool_calls` : `${path} has no content`,
      );
    }
    return problemOf(
      "missing_content",
      role === "assistant"
        ? `${path}.content is null, which is only allowed when the message has tool_calls`
        : `${path}.content is null`,
    );
  }
  if (typeof content === "string") {
    if (content.length === 0 && !hasToolCalls)
      return problemOf("missing_content", `${path}.content is empty`);
    return undefined;
  }
  if (!Array.isArray(content)) {
    return problemOf(
      "invalid_content",
      `${path}.content must be a string or an array of text parts (got ${typeName(content)})`,
    );
  }
  if (content.length === 0 && !hasToolCalls) {
    return problemOf("missing_content", `${path}.content is an empty array`);
  }
  let textLength = 0;
  for (let i = 0; i < content.length; i++) {
    const part = content[i];
    const at = `${path}.content[${i}]`;
    if (!isObject(part)) {
      return problemOf(
        "invalid_content_part",
        `${at} must be an object like {"type":"text","text":"..."} (got ${typeName(part)})`,
      );
    }
    if (part.type !== "text") {
      if (typeof part.type === "string" && IMAGE_PART_TYPES.has(part.type)) {
        return problemOf(
          "unsupported_content_part",
          `${at}: image parts are not supported: this service trains on text only (remove the image or describe it in text)`,
        );
      }
      return problemOf(
        "unsupported_content_part",
        has(part, "type")
          ? `${at}: content part type ${preview(part.type)} is not supported: only "text" parts are`
          : `${at} has no type: only {"type":"text","text":"..."} parts are supported`,
      );
    }
    const unknown = firstUnknownKey(part, TEXT_PART_KEYS);
    if (unknown !== undefined) {
      return problemOf(
        "invalid_content_part",
        `${at}: unrecognized key ${JSON.stringify(unknown)} (allowed: type, text)`,
      );
    }
    if (typeof part.text !== "string") {
      return problemOf("invalid_content_part", `${at}.text must be a string (got ${typeName(part.text)})`);
    }
    textLength += part.text.length;
  }
  if (textLength === 0 && !hasToolCalls) return problemOf("missing_content", `${path}.content has no text`);
  return undefined;
}

/** `tools` and `parallel_tool_calls` at the top of a chat example or inside a preference input. */
function checkToolsAndParallel(holder: Obj, prefix: string): ExampleProblem | undefined {
  if (has(holder, "parallel_tool_calls") && typeof holder.parallel_tool_calls !== "boolean") {
    return problemOf(
      "invalid_parallel_tool_calls",
      `${prefix}parallel_tool_calls must be a boolean (got ${preview(holder.parallel_tool_calls)})`,
    );
  }
  if (!has(holder, "tools")) return undefined;
  const tools = holder.tools;
  if (!Array.isArray(tools)) {
    return problemOf(
      "invalid_tools",
      `${prefix}tools must be an array of function tools (got ${typeName(tools)})`,
    );
  }
  for (let i = 0; i < tools.length; i++) {
    const tool = tools[i];
    const at = `${prefix}tools[${i}]`;
    if (!isObject(tool)) return problemOf("invalid_tools", `${at} must be an object (got ${typeName(tool)})`);
    const unknown = firstUnknownKey(tool, TOOL_KEYS);
    if (unknown !== undefined) {
      return problemOf(
        "invalid_tools",
        `${at}: unrecognized key ${JSON.stringify(unknown)} (allowed: type, function)`,
      );
    }
    if (tool.type !== "function") {
      return problemOf("invalid_tools", `${at}.type must be "function" (got ${preview(tool.type)})`);
    }
    const fn = tool.function;
    if (!isObject(fn))
      return problemOf("invalid_tools", `${at}.function must be an object (got ${typeName(fn)})`);
    const unknownFn = firstUnknownKey(fn, TOOL_FUNCTION_KEYS);
    if (unknownFn !== undefined) {
      return problemOf(
        "invalid_tools",
        `${at}.function: unrecognized key ${JSON.stringify(unknownFn)} (allowed: ${TOOL_FUNCTION_KEYS.join(", ")})`,
      );
    }
    if (typeof fn.name !== "string" || fn.name.length === 0) {
      return problemOf(
        "invalid_tools",
        `${at}.function.name must be a non-empty string (got ${preview(fn.name)})`,
      );
    }
    if (has(fn, "description") && typeof fn.description !== "string") {
      return problemOf(
        "invalid_tools",
        `${at}.function.description must be a string (got ${typeName(fn.description)})`,
      );
    }
    if (has(fn, "parameters") && !isObject(fn.parameters)) {
      return problemOf(
        "invalid_tools",
        `${at}.function.parameters must be a JSON Schema object (got ${typeName(fn.parameters)})`,
      );
    }
    if (has(fn, "strict") && typeof fn.strict !== "boolean") {
      return problemOf(
        "invalid_tools",
        `${at}.function.strict must be a boolean (got ${preview(fn.strict)})`,
      );
    }
  }
  return undefined;
}

function ok(example: Example): ExampleValidation {
  return { ok: true, example };
}

function fail(code: string, message: string): ExampleValidation {
  return { ok: false, code, message };
}

function problemOf(code: string, message: string): ExampleProblem {
  return { code, message };
}

function unrecognizedKey(key: string, where: string, allowed: readonly string[]): ExampleProblem {
  return problemOf(
    "unrecognized_key",
    `unrecognized key ${JSON.stringify(key)} in ${where} (allowed: ${allowed.join(", ")})`,
  );
}

function isObject(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function has(value: Obj, key: string): boolean {
  return Object.hasOwn(value, key);
}

function firstUnknownKey(value: Obj, allowed: readonly string[]): string | undefined {
  for (const key in value) {
    if (Object.hasOwn(value, key) && !allowed.includes(key)) return key;
  }
  return undefined;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${preview(value)}`;
}

/** A value as JSON, cut short, for "(got …)" in messages. */
function preview(value: unknown): string {
  if (value === undefined) return "nothing";
  return shorten(JSON.stringify(value) ?? String(value), 60);
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
