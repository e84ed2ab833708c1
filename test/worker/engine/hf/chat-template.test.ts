import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ChatMessage } from "../../../../worker/engine/data/example.js";
import {
  CHATML_TEMPLATE,
  ChatTemplate,
  ChatTemplateError,
  prepareMessagesForTemplate,
  resolveChatTemplate,
  strftime,
} from "../../../../worker/engine/hf/chat-template.js";
import { realTokenizerAndTemplate } from "../data/real-tokenizers.js";

const SHORT: ChatMessage[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "  Hi there  " },
  { role: "assistant", content: "Hello!" },
  { role: "user", content: "Bye" },
];

describe("ChatTemplate with the real templates", () => {
  it("llama3: the Llama 3 format, content trimmed, bos once, generation prompt", async () => {
    const { template } = await realTokenizerAndTemplate("llama3");
    assert.equal(
      template.render({ messages: SHORT, addGenerationPrompt: true }),
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("qwen3: ChatML turns; enable_thinking=false adds the empty think block to the generation prompt", async () => {
    const { template } = await realTokenizerAndTemplate("qwen3");
    const base =
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n  Hi there  <|im_end|>\n" +
      "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n";
    assert.equal(template.render({ messages: SHORT, addGenerationPrompt: true }), base);
    assert.equal(
      template.render({ messages: SHORT, addGenerationPrompt: true, extra: { enable_thinking: false } }),
      `${base}<think>\n\n</think>\n\n`,
    );
  });
});

describe("CHATML_TEMPLATE (the default)", () => {
  const t = new ChatTemplate(CHATML_TEMPLATE);

  it("renders plain turns, developer as system, text parts joined, generation prompt", () => {
    const text = t.render({
      messages: [
        { role: "developer", content: "Rules." },
        {
          role: "user",
          content: [
            { type: "text", text: "part one" },
            { type: "text", text: "part two" },
          ],
        },
      ],
      addGenerationPrompt: true,
    });
    assert.equal(
      text,
      "<|im_start|>system\nRules.<|im_end|>\n<|im_start|>user\npart one\npart two<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  it("renders tools in the system turn and tool calls (arguments parsed; non-JSON kept as written)", () => {
    const text = t.render({
      messages: [
        { role: "system", content: "S" },
        { role: "user", content: "U" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "1", type: "function", function: { name: "f", arguments: '{"a":1,"b":"x"}' } },
            { id: "2", type: "function", function: { name: "g", arguments: "not json" } },
          ],
        },
        { role: "tool", tool_call_id: "1", content: "R" },
      ],
      tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
    });
    assert.equal(
      text,
      "<|im_start|>system\nS\n\n# Tools\n\nYou may call functions. Their signatures are listed within <tools></tools>:\n<tools>\n" +
        '{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}\n</tools>\n\n' +
        "To call a function, answer with its name and arguments as JSON within <tool_call></tool_call> tags:\n" +
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
        "<|im_start|>user\nU<|im_end|>\n" +
        '<|im_start|>assistant\n<tool_call>\n{"name": "f", "arguments": {"a": 1, "b": "x"}}\n</tool_call>\n' +
        '<tool_call>\n{"name": "g", "arguments": not json}\n</tool_call><|im_end|>\n' +
        "<|im_start|>tool\nR<|im_end|>\n",
    );
  });

  it("is what resolveChatTemplate gives a folder without a template; an override wins over the folder's", () => {
    assert.equal(resolveChatTemplate(null).source, CHATML_TEMPLATE);
    assert.equal(resolveChatTemplate("folder").source, "folder");
    assert.equal(resolveChatTemplate("folder", { override: "job" }).source, "job");
  });
});

describe("ChatTemplate context", () => {
  it("passes special tokens, tools (none when absent) and extra kwargs", () => {
    const t = new ChatTemplate(
      "{{ bos_token }}|{{ eos_token }}|{{ tools is none }}|{{ custom }}|{{ add_generation_prompt }}",
      {
        specialTokens: { bos_token: "<s>", eos_token: "</s>" },
      },
    );
    assert.equal(t.render({ messages: [], extra: { custom: "x" } }), "<s>|</s>|true|x|false");
  });

  it("raise_exception surfaces the template's message", () => {
    const t = new ChatTemplate(
      "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with user') }}{% endif %}",
    );
    assert.throws(
      () => t.render({ messages: [{ role: "system", content: "s" }] }),
      (err: unknown) => {
        assert.ok(err instanceof ChatTemplateError);
        assert.match((err as Error).message, /Conversation must start with user/);
        return true;
      },
    );
  });

  it("strftime_now uses the given clock, in English like Python's C locale", () => {
    const now = new Date(2025, 2, 5, 14, 7, 9);
    const t = new ChatTemplate("{{ strftime_now('%d %b %Y') }}", { now: () => now });
    assert.equal(t.render({ messages: [] }), "05 Mar 2025");
    assert.equal(
      strftime(now, "%-d %B %y %H:%M:%S %a %A %j %I%p %%"),
      "5 March 25 14:07:09 Wed Wednesday 064 02PM %",
    );
  });

  it("picks tool_use from named templates when tools are given, default otherwise", () => {
    const t = new ChatTemplate({ default: "D", tool_use: "T" });
    assert.equal(t.render({ messages: [] }), "D");
    assert.equal(t.render({ messages: [], tools: [{ type: "function", function: { name: "f" } }] }), "T");
    assert.throws(() => new ChatTemplate({ other: "O" }).render({ messages: [] }), /none named/);
  });

  it("a template that does not parse fails when compiled, naming the problem", () => {
    assert.throws(() => new ChatTemplate("{% for m in messages %}"), ChatTemplateError);
  });

  it("prepareMessagesForTemplate leaves the input untouched", () => {
    const messages: ChatMessage[] = [
      {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "1", type: "function", function: { name: "f", arguments: "{}" } }],
      },
    ];
    const copy = structuredClone(messages);
    const prepared = prepareMessagesForTemplate(messages);
    assert.equal(prepared[0].content, "");
    assert.deepEqual((prepared[0].tool_calls as any)[0].function.arguments, {});
    assert.deepEqual(messages, copy);
  });
});
