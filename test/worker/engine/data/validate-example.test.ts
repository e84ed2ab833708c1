import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { validateExample } from "../../../../worker/engine/data/validate-example.js";

const user = { role: "user", content: "What is 2+2?" };
const assistant = { role: "assistant", content: "4" };
const toolCall = { id: "call_1", type: "function", function: { name: "add", arguments: '{"a":2,"b":2}' } };

function problemOf(value: unknown): { code: string; message: string } {
  const result = validateExample(value);
  assert.equal(result.ok, false, `expected a problem for ${JSON.stringify(value)}`);
  if (result.ok) throw new Error("unreachable");
  return { code: result.code, message: result.message };
}

function assertProblem(value: unknown, code: string, message: string | RegExp): void {
  const problem = problemOf(value);
  assert.equal(problem.code, code, problem.message);
  if (typeof message === "string") assert.equal(problem.message, message);
  else assert.match(problem.message, message);
}

function chat(...messages: unknown[]): unknown {
  return { messages };
}

describe("validateExample: chat", () => {
  test("accepts a plain conversation and returns it typed as chat", () => {
    const value = chat({ role: "system", content: "Be brief." }, user, assistant);
    const result = validateExample(value);
    assert.deepEqual(result, { ok: true, example: { format: "chat", example: value } });
  });

  test("accepts developer role, names, text parts, weights and multi-turn", () => {
    const result = validateExample(
      chat(
        { role: "developer", content: [{ type: "text", text: "Be brief." }] },
        { role: "user", name: "ann", content: "hi" },
        { role: "assistant", content: "hello", weight: 0 },
        user,
        { role: "assistant", content: [{ type: "text", text: "4" }], weight: 1 },
      ),
    );
    assert.equal(result.ok, true);
  });

  test("accepts tool calls with null content, tool answers and tools", () => {
    const value = {
      messages: [
        user,
        { role: "assistant", content: null, tool_calls: [toolCall] },
        { role: "tool", tool_call_id: "call_1", content: "4" },
        assistant,
      ],
      tools: [
        {
          type: "function",
          function: { name: "add", description: "adds", parameters: { type: "object" }, strict: true },
        },
      ],
      parallel_tool_calls: false,
    };
    assert.equal(validateExample(value).ok, true);
    // content may also be left out when there are tool calls
    const noContent = chat(user, { role: "assistant", tool_calls: [toolCall] });
    assert.equal(validateExample(noContent).ok, true);
  });

  test("refuses values that are not objects and objects of no known format", () => {
    assertProblem([], "not_an_object", "an example must be a JSON object (got an array)");
    assertProblem({}, "unrecognized_format", /found an empty object/);
    assertProblem({ message: [] }, "unrecognized_format", /found keys "message"/);
  });

  test("messages must be a non-empty array", () => {
    assertProblem({ messages: [] }, "missing_messages_list", /messages is empty/);
    assertProblem(
      { messages: "hi" },
      "missing_messages_list",
      /messages must be a non-empty array .*got string "hi"/,
    );
  });

  test("unknown top-level keys are refused", () => {
    assertProblem(
      { messages: [user, assistant], prompt: "x" },
      "unrecognized_key",
      /unrecognized key "prompt"/,
    );
  });

  test("roles: missing, unknown, deprecated function", () => {
    assertProblem(chat(user, { content: "4" }), "message_missing_key", "messages[1] has no role");
    assertProblem(
      chat(user, { role: "bot", content: "4" }),
      "unrecognized_role",
      'messages[1].role must be one of system, developer, user, assistant, tool (got "bot")',
    );
    assertProblem(chat({ role: "function", content: "x" }, assistant), "unrecognized_role", /use "tool"/);
  });

  test("unknown message keys are refused, naming the key and the message", () => {
    assertProblem(
      chat(user, { ...assistant, refusal: null }),
      "message_unrecognized_key",
      /^messages\[1\]: unrecognized key "refusal"/,
    );
    assertProblem(
      chat(user, { role: "assistant", content: null, function_call: { name: "f", arguments: "{}" } }),
      "message_unrecognized_key",
      /function_call is deprecated/,
    );
    assertProblem(
      chat(user, assistant, { role: "tool", tool_call_id: "x", name: "n", content: "x" }),
      "message_unrecognized_key",
      "messages[2]: name is not allowed on tool messages",
    );
  });

  test("weight: only 0 or 1, only on assistant messages", () => {
    assertProblem(
      chat(user, { ...assistant, weight: 2 }),
      "invalid_weight",
      "messages[1].weight must be 0 or 1 (got 2)",
    );
    assertProblem(
      chat(user, { ...assistant, weight: true }),
      "invalid_weight",
      "messages[1].weight must be 0 or 1 (got true)",
    );
    assertProblem(
      chat(user, { ...assistant, weight: "1" }),
      "invalid_weight",
      'messages[1].weight must be 0 or 1 (got "1")',
    );
    assertProblem(
      chat(user, assistant, user, { ...user, weight: 1 }, assistant),
      "invalid_weight",
      "messages[3]: weight is only allowed on assistant messages",
    );
  });

  test("at least one assistant message, and at least one trained", () => {
    assertProblem(chat(user), "example_missing_assistant_message", /no assistant message/);
    assertProblem(
      chat(user, { ...assistant, weight: 0 }, user, { ...assistant, weight: 0 }),
      "example_missing_trainable_assistant_message",
      /weight 0/,
    );
  });

  test("content: missing, null, empty, wrong type", () => {
    assertProblem(chat({ role: "user" }, assistant), "message_missing_key", "messages[0] has no content");
    assertProblem(
      chat(user, { role: "assistant" }),
      "message_missing_key",
      "messages[1] has no content and no tool_calls",
    );
    assertProblem(
      chat(user, { role: "assistant", content: null }),
      "missing_content",
      /only allowed when the message has tool_calls/,
    );
    assertProblem(
      chat({ role: "user", content: "" }, assistant),
      "missing_content",
      "messages[0].content is empty",
    );
    assertProblem(
      chat(user, { role: "assistant", content: [] }),
      "missing_content",
      "messages[1].content is an empty array",
    );
    assertProblem(
      chat({ role: "user", content: 5 }, assistant),
      "invalid_content",
      /messages\[0\]\.content must be a string .*got number 5/,
    );
    assertProblem(
      chat({ role: "user", content: [{ type: "text", text: "" }] }, assistant),
      "missing_content",
      "messages[0].content has no text",
    );
  });

  test("content parts: image parts are refused as text-only, others named", () => {
    const image = { type: "image_url", image_url: { url: "https://example.com/a.png" } };
    assertProblem(
      chat({ role: "user", content: [{ type: "text", text: "what is this?" }, image] }, assistant),
      "unsupported_content_part",
      /^messages\[0\]\.content\[1\]: image parts are not supported: this service trains on text only/,
    );
    assertProblem(
      chat({ role: "user", content: [{ type: "input_audio", input_audio: {} }] }, assistant),
      "unsupported_content_part",
      /content part type "input_audio" is not supported/,
    );
    assertProblem(
      chat({ role: "user", content: ["hi"] }, assistant),
      "invalid_content_part",
      /messages\[0\]\.content\[0\] must be an object/,
    );
    assertProblem(
      chat({ role: "user", content: [{ type: "text", text: 3 }] }, assistant),
      "invalid_content_part",
      "messages[0].content[0].text must be a string (got number 3)",
    );
    assertProblem(
      chat({ role: "user", content: [{ type: "text", text: "a", cache: 1 }] }, assistant),
      "invalid_content_part",
      /unrecognized key "cache"/,
    );
  });

  test("tool_calls: shape, arguments as a JSON string, only on assistant", () => {
    const withCall = (call: unknown) => chat(user, { role: "assistant", content: null, tool_calls: [call] });
    assertProblem(
      withCall({ ...toolCall, function: { name: "add", arguments: { a: 2 } } }),
      "invalid_tool_call_arguments",
      /^messages\[1\]\.tool_calls\[0\]\.function\.arguments must be a string holding JSON/,
    );
    assertProblem(
      withCall({ ...toolCall, function: { name: "add", arguments: "{a:2" } }),
      "invalid_tool_call_arguments",
      /messages\[1\]\.tool_calls\[0\]\.function\.arguments is not valid JSON/,
    );
    assertProblem(
      withCall({ ...toolCall, type: "code" }),
      "invalid_tool_call",
      'messages[1].tool_calls[0].type must be "function" (got "code")',
    );
    assertProblem(
      withCall({ ...toolCall, id: "" }),
      "invalid_tool_call",
      /tool_calls\[0\]\.id must be a non-empty string/,
    );
    assertProblem(
      withCall({ ...toolCall, function: { arguments: "{}" } }),
      "invalid_tool_call",
      /function\.name must be a non-empty string/,
    );
    assertProblem(
      chat(user, { role: "assistant", content: "x", tool_calls: [] }),
      "invalid_tool_calls",
      /must be a non-empty array/,
    );
    assertProblem(
      chat({ ...user, tool_calls: [toolCall] }, assistant),
      "invalid_tool_calls",
      "messages[0]: tool_calls is only allowed on assistant messages",
    );
  });

  test("tool messages need a tool_call_id that answers an earlier call", () => {
    const call = { role: "assistant", content: null, tool_calls: [toolCall] };
    assertProblem(
      chat(user, call, { role: "tool", content: "4" }, assistant),
      "missing_tool_call_id",
      "messages[2]: tool messages need a tool_call_id",
    );
    assertProblem(
      chat(user, call, { role: "tool", tool_call_id: "call_9", content: "4" }, assistant),
      "unknown_tool_call_id",
      /messages\[2\]\.tool_call_id "call_9" matches no tool call/,
    );
    assertProblem(
      chat({ ...user, tool_call_id: "call_1" }, assistant),
      "invalid_tool_call_id",
      "messages[0]: tool_call_id is only allowed on tool messages",
    );
  });

  test("tools and parallel_tool_calls", () => {
    assertProblem({ messages: [user, assistant], tools: {} }, "invalid_tools", /tools must be an array/);
    assertProblem(
      { messages: [user, assistant], tools: [{ type: "web_search" }] },
      "invalid_tools",
      /tools\[0\]\.type must be "function"/,
    );
    assertProblem(
      { messages: [user, assistant], tools: [{ type: "function", function: { name: "f", parameters: [] } }] },
      "invalid_tools",
      /tools\[0\]\.function\.parameters must be a JSON Schema object/,
    );
    assertProblem(
      { messages: [user, assistant], parallel_tool_calls: "yes" },
      "invalid_parallel_tool_calls",
      /must be a boolean/,
    );
  });
});

describe("validateExample: preference", () => {
  const good = {
    input: { messages: [user] },
    preferred_output: [{ role: "assistant", content: "4" }],
    non_preferred_output: [{ role: "assistant", content: "5" }],
  };

  test("accepts a DPO example", () => {
    assert.deepEqual(validateExample(good), { ok: true, example: { format: "preference", example: good } });
  });

  test("each output is exactly one assistant message", () => {
    assertProblem(
      { ...good, preferred_output: [assistant, assistant] },
      "invalid_preferred_output",
      "preferred_output must be an array of exactly one assistant message (got 2 messages)",
    );
    assertProblem(
      { ...good, non_preferred_output: { role: "assistant", content: "5" } },
      "invalid_non_preferred_output",
      /got an object/,
    );
    assertProblem(
      { ...good, preferred_output: [user] },
      "invalid_preferred_output",
      'preferred_output[0].role must be "assistant" (got "user")',
    );
    assertProblem(
      { ...good, preferred_output: [{ role: "assistant", content: "" }] },
      "missing_content",
      "preferred_output[0].content is empty",
    );
  });

  test("input and its messages are checked with their paths", () => {
    const { input: _input, ...noInput } = good;
    assertProblem(noInput, "missing_preference_key", /input is missing/);
    assertProblem({ ...good, input: { messages: [] } }, "missing_messages_list", /input\.messages is empty/);
    assertProblem(
      { ...good, input: { messages: [{ role: "user" }] } },
      "message_missing_key",
      "input.messages[0] has no content",
    );
    assertProblem(
      { ...good, input: { messages: [user], extra: 1 } },
      "unrecognized_key",
      /unrecognized key "extra" in input/,
    );
    assertProblem(
      { ...good, preferred_output: [{ ...assistant, weight: 1 }] },
      "invalid_weight",
      /^preferred_output\[0\]: weight is not used in preference examples/,
    );
  });
});

describe("validateExample: prompt/completion and text", () => {
  test("accepts both, with an empty prompt allowed", () => {
    assert.deepEqual(validateExample({ prompt: "", completion: "x" }), {
      ok: true,
      example: { format: "prompt_completion", example: { prompt: "", completion: "x" } },
    });
    assert.deepEqual(validateExample({ text: "abc" }), {
      ok: true,
      example: { format: "text", example: { text: "abc" } },
    });
  });

  test("refuses empty or non-string fields and extra keys", () => {
    assertProblem({ prompt: "a", completion: "" }, "missing_completion", /completion is empty/);
    assertProblem({ prompt: "a" }, "missing_completion", "completion is missing");
    assertProblem({ completion: "a" }, "missing_prompt", /prompt is missing/);
    assertProblem({ prompt: 1, completion: "a" }, "invalid_prompt", "prompt must be a string (got number 1)");
    assertProblem(
      { prompt: "a", completion: "b", id: 3 },
      "unrecognized_key",
      /unrecognized key "id" in a prompt\/completion example/,
    );
    assertProblem({ text: "" }, "missing_text", /text is empty/);
    assertProblem({ text: ["a"] }, "invalid_text", "text must be a string (got an array)");
  });
});
