// How a model writes tool calls, read from its own chat template, so a model tuned on
// function-calling data is answered in the syntax it was trained on:
//   hermes   `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>` (Qwen2.5/Qwen3, Hermes, our
//            ChatML default and tiny-chatml, and templates with no tool-call syntax, whose calls the
//            renderer writes this way);
//   llama    `{"name": …, "parameters": {…}}` as the whole reply, after `<|python_tag|>` where the
//            template uses it (Llama 3.1/3.2 JSON tool calling);
//   mistral  `[TOOL_CALLS] [{"name": …, "arguments": {…}}, …]`.
// `parseToolCalls` turns a finished reply into content + calls (null when it holds none or they
// do not parse: the reply is then plain content). `callPrefix` is the text a reply starts with
// when it calls a function, found by rendering a probe call through the template, so a forced
// call (tool_choice "required" or a named function) starts exactly as in training.

import type { ChatTemplate } from "../../worker/engine/hf/chat-template.js";

export type ToolCallSyntax = "hermes" | "llama" | "mistral";

export interface ParsedToolCall {
  name: string;
  /** JSON text of the arguments object */
  arguments: string;
}

export interface ParsedReply {
  content: string | null;
  calls: ParsedToolCall[];
}

export interface ToolCallFormat {
  syntax: ToolCallSyntax;
  /** what a reply holding calls starts with, before the function's name, e.g. `<tool_call>\n{"name": "` */
  beforeName: string;
  /** between the name and the arguments object, e.g. `", "arguments": ` */
  afterName: string;
  /** after the arguments object, up to the end of the turn, e.g. `}\n</tool_call>` */
  afterArgs: string;
}

function templateText(template: ChatTemplate): string {
  const source = template.source;
  if (typeof source === "string") return source;
  return source.tool_use ?? source.default ?? Object.values(source).join("\n");
}

export function detectToolCallSyntax(text: string): ToolCallSyntax {
  if (text.includes("[TOOL_CALLS]")) return "mistral";
  if (text.includes("<tool_call>")) return "hermes";
  if (
    text.includes("tool_calls") &&
    (text.includes("<|python_tag|>") || text.includes("<|start_header_id|>"))
  )
    return "llama";
  return "hermes";
}

const DEFAULT_PREFIXES: Record<ToolCallSyntax, [string, string, string]> = {
  hermes: ['<tool_call>\n{"name": "', '", "arguments": ', "}\n</tool_call>"],
  llama: ['{"name": "', '", "parameters": ', "}"],
  mistral: ['[TOOL_CALLS] [{"name": "', '", "arguments": ', "}]"],
};

const END_OF_TURN = ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "</s>", "<|end|>", "<|endoftext|>"];

const PROBE_NAME = "probe_fn_zq";
const PROBE_ARG = '"probe_arg_zq"';

/** The text a template writes for an assistant call, between the generation prompt and the arguments. */
function probeCallPrefix(template: ChatTemplate, withTools: boolean): [string, string, string] | null {
  const tools = withTools
    ? [{ type: "function" as const, function: { name: PROBE_NAME, parameters: { type: "object" } } }]
    : null;
  const user = { role: "user" as const, content: "x" };
  const call = {
    role: "assistant" as const,
    content: null,
    tool_calls: [
      {
        id: "call_probe",
        type: "function" as const,
        function: { name: PROBE_NAME, arguments: `{${PROBE_ARG}: 1}` },
      },
    ],
  };
  try {
    const prompt = template.render({ messages: [user], tools, addGenerationPrompt: true });
    const full = template.render({ messages: [user, call], tools });
    if (!full.startsWith(prompt)) return null;
    const reply = full.slice(prompt.length);
    const at = reply.indexOf(PROBE_NAME);
    const args = reply.indexOf(`{${PROBE_ARG}`, at);
    const argsEnd = reply.indexOf("1}", args) + 2;
    if (at < 0 || args < 0 || argsEnd < 2) return null;
    let tail = reply.slice(argsEnd);
    const end = Math.min(...END_OF_TURN.map((m) => tail.indexOf(m)).filter((i) => i >= 0), tail.length);
    tail = tail.slice(0, end).trimEnd();
    // a call id the template prints (Mistral) cannot be forced: end the call without it
    if (tail.includes("call_probe")) return null;
    return [reply.slice(0, at), reply.slice(at + PROBE_NAME.length, args), tail];
  } catch {
    return null;
  }
}

const formats = new WeakMap<ChatTemplate, ToolCallFormat>();

export function toolCallFormat(template: ChatTemplate): ToolCallFormat {
  let format = formats.get(template);
  if (!format) {
    const syntax = detectToolCallSyntax(templateText(template));
    const [beforeName, afterName, afterArgs] =
      probeCallPrefix(template, true) ?? probeCallPrefix(template, false) ?? DEFAULT_PREFIXES[syntax];
    format = { syntax, beforeName, afterName, afterArgs };
    formats.set(template, format);
  }
  return format;
}

/** Where a reply's calls begin (-1: none yet), for streaming: content before it can be sent. */
export function callStart(syntax: ToolCallSyntax, text: string): number {
  switch (syntax) {
    case "hermes":
      return text.indexOf("<tool_call>");
    case "mistral":
      return text.indexOf("[TOOL_CALLS]");
    case "llama": {
      const tag = text.indexOf("<|python_tag|>");
      if (tag >= 0) return tag;
      const first = text.search(/\S/);
      return first >= 0 && text[first] === "{" ? first : -1;
    }
  }
}

/** The markers a call can start with: text ending in a prefix of one is held back while streaming. */
export function callMarkers(syntax: ToolCallSyntax): string[] {
  switch (syntax) {
    case "hermes":
      return ["<tool_call>"];
    case "mistral":
      return ["[TOOL_CALLS]"];
    case "llama":
      return ["<|python_tag|>"];
  }
}

/** JSON values one after another (separated by whitespace, ",", ";"), each parsed; null if any fails. */
export function parseJsonSequence(text: string): unknown[] | null {
  const values: unknown[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /[\s,;]/.test(text[i])) i++;
    if (i >= text.length) break;
    const open = text[i];
    if (open !== "{" && open !== "[") return null;
    let depth = 0;
    let inString = false;
    let end = -1;
    for (let j = i; j < text.length; j++) {
      const c = text[j];
      if (inString) {
        if (c === "\\") j++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        depth--;
        if (depth === 0) {
          end = j + 1;
          break;
        }
      }
    }
    if (end < 0) return null;
    try {
      values.push(JSON.parse(text.slice(i, end)));
    } catch {
      return null;
    }
    i = end;
  }
  return values;
}

function asCall(value: unknown): ParsedToolCall | null {
  if (!value || typeof value !== "object" || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  const fn = (v.function && typeof v.function === "object" ? v.function : v) as Record<string, unknown>;
  if (typeof fn.name !== "string" || fn.name.length === 0) return null;
  const args = fn.arguments ?? fn.parameters ?? {};
  if (typeof args === "string") {
    try {
      JSON.parse(args);
    } catch {
      return null;
    }
    return { name: fn.name, arguments: args };
  }
  if (typeof args !== "object" || args === null || Array.isArray(args)) return null;
  return { name: fn.name, arguments: JSON.stringify(args) };
}

function callsOf(values: unknown[] | null): ParsedToolCall[] | null {
  if (!values || values.length === 0) return null;
  const flat = values.flatMap((v) => (Array.isArray(v) ? v : [v]));
  const calls = flat.map(asCall);
  return calls.every((c) => c !== null) && calls.length > 0 ? (calls as ParsedToolCall[]) : null;
}

function contentBefore(text: string, at: number): string | null {
  const content = text
    .slice(0, at)
    .replace(/<think>\s*<\/think>/, "")
    .trim();
  return content.length > 0 ? content : null;
}

/** A finished reply → its content and calls; null when it holds no (well-formed) call. */
export function parseToolCalls(syntax: ToolCallSyntax, text: string): ParsedReply | null {
  const at = callStart(syntax, text);
  if (at < 0) return null;
  let calls: ParsedToolCall[] | null;
  switch (syntax) {
    case "hermes": {
      const bodies = [...text.slice(at).matchAll(/<tool_call>([\s\S]*?)(?:<\/tool_call>|$)/g)].map(
        (m) => m[1],
      );
      calls = callsOf(bodies.flatMap((b) => parseJsonSequence(b) ?? [null]));
      break;
    }
    case "mistral":
      calls = callsOf(parseJsonSequence(text.slice(at + "[TOOL_CALLS]".length)));
      break;
    case "llama":
      calls = callsOf(
        parseJsonSequence(
          text
            .slice(at)
            .replace("<|python_tag|>", "")
            .replace(/<\|eom_id\|>|<\|eot_id\|>/g, ""),
        ),
      );
      break;
  }
  return calls ? { content: contentBefore(text, at), calls } : null;
}
