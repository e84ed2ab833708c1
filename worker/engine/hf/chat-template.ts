// Render a conversation with a model's Jinja chat template the way transformers'
// `apply_chat_template(..., tokenize=False)` does, so the text we train on is the text inference sees.
//
// Context given to the template (as transformers gives it): `messages`, `tools` (none when absent),
// `documents` (none), `add_generation_prompt`, every special token of tokenizer_config by name
// (`bos_token`, `eos_token`, `pad_token`, …), `raise_exception(msg)`, `strftime_now(fmt)`, plus any
// extra keyword a job passes (`enable_thinking`, `date_string`, …). Jinja runs with trim_blocks and
// lstrip_blocks on, as in transformers (@huggingface/jinja does that itself).
//
// Messages are adapted to what templates expect, the way OpenAI-compatible servers (vLLM) adapt them,
// so training and our own chat completions agree:
//   - text parts (`[{type:"text",text}]`) are joined with "\n" into one string;
//   - `content: null` (an assistant turn that only calls tools) becomes "" (templates call string
//     methods on content; transformers would fail or print "None");
//   - `tool_calls[].function.arguments`, a JSON string in OpenAI's format, is parsed into an object
//     when it is one (Llama 3.1-style templates apply `tojson` to it; Qwen-style ones then print the
//     canonical `{"a": 1}` form). Note JSON numbers lose a written ".0" (JavaScript has one number type).

import { Environment, Interpreter, Template } from "@huggingface/jinja";
import type { ChatMessage, FunctionTool } from "../data/example.js";
import type { ChatTemplateSource } from "./tokenizer.js";

/**
 * The template used when a model folder has none: ChatML (`<|im_start|>role\n…<|im_end|>\n`), with
 * tools listed in the system turn and tool calls as `<tool_call>{json}</tool_call>` (Hermes style).
 * Its end-of-turn marker `<|im_end|>` should be a special token of the tokenizer.
 */
export const CHATML_TEMPLATE = `{%- set ns = namespace(first=0) %}
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages and messages[0].role in ['system', 'developer'] %}
        {{- messages[0].content + '\\n\\n' }}
        {%- set ns.first = 1 %}
    {%- endif %}
    {{- '# Tools\\n\\nYou may call functions. Their signatures are listed within <tools></tools>:\\n<tools>' }}
    {%- for tool in tools %}
        {{- '\\n' + (tool | tojson) }}
    {%- endfor %}
    {{- '\\n</tools>\\n\\nTo call a function, answer with its name and arguments as JSON within <tool_call></tool_call> tags:\\n<tool_call>\\n{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}
{%- endif %}
{%- for message in messages[ns.first:] %}
    {%- set role = 'system' if message.role == 'developer' else message.role %}
    {{- '<|im_start|>' + role + '\\n' + message.content }}
    {%- if message.role == 'assistant' and message.tool_calls %}
        {%- for call in message.tool_calls %}
            {%- if message.content or not loop.first %}
                {{- '\\n' }}
            {%- endif %}
            {%- set fn = call.function if call.function else call %}
            {{- '<tool_call>\\n{"name": ' + (fn.name | tojson) + ', "arguments": ' }}
            {%- if fn.arguments is string %}
                {{- fn.arguments }}
            {%- else %}
                {{- fn.arguments | tojson }}
            {%- endif %}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
    {%- endif %}
    {{- '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}`;

export interface RenderInput {
  messages: readonly ChatMessage[] | readonly Record<string, unknown>[];
  tools?: readonly FunctionTool[] | null;
  addGenerationPrompt?: boolean;
  /** extra template variables (transformers' **kwargs), e.g. { enable_thinking: false } */
  extra?: Record<string, unknown>;
}

export interface ChatTemplateOptions {
  /** special tokens by name (bos_token, eos_token, …), usually HfTokenizer.specialTokensMap */
  specialTokens?: Readonly<Record<string, string>>;
  /** what strftime_now sees; fix it for reproducible renders (templates that print today's date) */
  now?: () => Date;
  /** which named template to use when the source has several (default: "tool_use" with tools, else "default") */
  name?: string;
}

export class ChatTemplateError extends Error {}

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

/** Python's strftime in the C locale, for the directives chat templates use. */
export function strftime(date: Date, format: string): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  const h12 = date.getHours() % 12 || 12;
  return format.replace(/%(-?)([a-zA-Z%])/g, (whole, dash: string, d: string) => {
    const num = (n: number, w = 2) => (dash ? String(n) : pad(n, w));
    switch (d) {
      case "Y":
        return String(date.getFullYear());
      case "y":
        return pad(date.getFullYear() % 100);
      case "m":
        return num(date.getMonth() + 1);
      case "d":
        return num(date.getDate());
      case "e":
        return String(date.getDate()).padStart(2, " ");
      case "H":
        return num(date.getHours());
      case "I":
        return num(h12);
      case "M":
        return num(date.getMinutes());
      case "S":
        return num(date.getSeconds());
      case "p":
        return date.getHours() < 12 ? "AM" : "PM";
      case "b":
      case "h":
        return MONTHS[date.getMonth()].slice(0, 3);
      case "B":
        return MONTHS[date.getMonth()];
      case "a":
        return DAYS[date.getDay()].slice(0, 3);
      case "A":
        return DAYS[date.getDay()];
      case "j": {
        const start = new Date(date.getFullYear(), 0, 1);
        return num(Math.floor((date.getTime() - start.getTime()) / 86_400_000) + 1, 3);
      }
      case "%":
        return "%";
      default:
        return whole;
    }
  });
}

/** Adapt OpenAI-format messages to what chat templates expect (see the file comment). */
export function prepareMessagesForTemplate(
  messages: readonly ChatMessage[] | readonly Record<string, unknown>[],
): Record<string, unknown>[] {
  return messages.map((m: any) => {
    const out: Record<string, unknown> = { ...m };
    if (Array.isArray(m.content)) {
      out.content = m.content
        .filter((p: any) => p && p.type === "text")
        .map((p: any) => p.text)
        .join("\n");
    } else if (m.content === null || m.content === undefined) {
      out.content = "";
    }
    if (Array.isArray(m.tool_calls)) {
      out.tool_calls = m.tool_calls.map((call: any) => {
        const fn = call?.function;
        if (!fn || typeof fn.arguments !== "string") return call;
        let parsed: unknown;
        try {
          parsed = JSON.parse(fn.arguments);
        } catch {
          return call;
        }
        if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return call;
        return { ...call, function: { ...fn, arguments: parsed } };
      });
    }
    return out;
  });
}

/**
 * A template that never mentions `tool_calls` (Llama 3's base template) would drop an assistant's
 * calls, so the model would train on, and be prompted with, empty turns. Such turns get their
 * calls written into the content instead, as the default template writes them:
 * `<tool_call>\n{"name": …, "arguments": …}\n</tool_call>`, one per call.
 */
export function inlineToolCallsUnlessRendered(
  messages: Record<string, unknown>[],
  templateText: string,
): Record<string, unknown>[] {
  if (templateText.includes("tool_calls")) return messages;
  return messages.map((m) => {
    if (!Array.isArray(m.tool_calls) || m.tool_calls.length === 0) return m;
    const calls = m.tool_calls.map((call: any) => {
      const fn = call?.function ?? call;
      const args = typeof fn?.arguments === "string" ? fn.arguments : JSON.stringify(fn?.arguments ?? {});
      return `<tool_call>\n{"name": ${JSON.stringify(fn?.name ?? "")}, "arguments": ${args}}\n</tool_call>`;
    });
    const content = typeof m.content === "string" && m.content.length > 0 ? `${m.content}\n` : "";
    const { tool_calls: _dropped, ...rest } = m;
    return { ...rest, content: content + calls.join("\n") };
  });
}

/** A compiled chat template (compile once, render many times). */
export class ChatTemplate {
  readonly source: ChatTemplateSource;
  private readonly compiled = new Map<string, Template>();
  private readonly specialTokens: Readonly<Record<string, string>>;
  private readonly now: () => Date;
  private readonly name?: string;

  constructor(source: ChatTemplateSource, opts: ChatTemplateOptions = {}) {
    this.source = source;
    this.specialTokens = opts.specialTokens ?? {};
    this.now = opts.now ?? (() => new Date());
    this.name = opts.name;
    // Compile eagerly so a broken template fails when the job starts, not at line 1,000.
    if (typeof source === "string") this.compile("", source);
    else for (const [name, text] of Object.entries(source)) this.compile(name, text);
  }

  private compile(name: string, text: string): Template {
    let t = this.compiled.get(name);
    if (!t) {
      try {
        t = new Template(text);
      } catch (err: any) {
        throw new ChatTemplateError(
          `chat template${name ? ` "${name}"` : ""} does not parse: ${err?.message ?? err}`,
        );
      }
      this.compiled.set(name, t);
    }
    return t;
  }

  private pickText(hasTools: boolean): string {
    if (typeof this.source === "string") return this.source;
    const name =
      this.name ??
      (hasTools && this.source.tool_use ? "tool_use" : this.source.default ? "default" : undefined);
    return (name && this.source[name]) || "";
  }

  private pick(hasTools: boolean): Template {
    if (typeof this.source === "string") return this.compile("", this.source);
    const names = Object.keys(this.source);
    const name =
      this.name ??
      (hasTools && this.source.tool_use ? "tool_use" : this.source.default ? "default" : undefined);
    if (!name || !(name in this.source)) {
      throw new ChatTemplateError(
        `chat template: several templates (${names.join(", ")}) and none named ${name ?? '"default"'}`,
      );
    }
    return this.compile(name, this.source[name]);
  }

  /** The rendered text; throws ChatTemplateError with the template's own message on failure. */
  render(input: RenderInput): string {
    const tools = input.tools?.length ? input.tools : null;
    const template = this.pick(tools !== null);
    const context: Record<string, unknown> = {
      ...this.specialTokens,
      ...(input.extra ?? {}),
      messages: inlineToolCallsUnlessRendered(
        prepareMessagesForTemplate(input.messages),
        this.pickText(tools !== null),
      ),
      tools,
      documents: null,
      add_generation_prompt: input.addGenerationPrompt ?? false,
    };
    try {
      return renderWithGlobals(template, context, this.now);
    } catch (err: any) {
      if (err instanceof ChatTemplateError) throw err;
      throw new ChatTemplateError(`chat template failed: ${err?.message ?? err}`);
    }
  }
}

function range(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (step === 0) throw new ChatTemplateError("range() step must not be zero");
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

/**
 * Template.render() declares its own raise_exception and strftime_now (local-locale month names,
 * the wall clock) and refuses redeclaring them, so we run the parsed program in our own environment
 * with the same globals plus ours.
 */
function renderWithGlobals(template: Template, context: Record<string, unknown>, now: () => Date): string {
  const env = new Environment();
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    range,
    raise_exception: (message: unknown) => {
      throw new ChatTemplateError(`chat template raised: ${String(message)}`);
    },
    strftime_now: (format: unknown) => strftime(now(), String(format)),
  };
  for (const [key, value] of Object.entries({ ...globals, ...context })) env.set(key, value);
  return new Interpreter(env).run(template.parsed).value as string;
}

/**
 * The template a job renders with: the job's override if it gives one, else the model folder's,
 * else ChatML.
 */
export function resolveChatTemplate(
  folderTemplate: ChatTemplateSource | null | undefined,
  opts: ChatTemplateOptions & { override?: string | null } = {},
): ChatTemplate {
  const source = opts.override ?? folderTemplate ?? CHATML_TEMPLATE;
  return new ChatTemplate(source, opts);
}
