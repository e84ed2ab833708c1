// A function-calling example must keep its arguments through every template we ship or test
// with: training and chat prompts both render through ChatTemplate.render.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ChatMessage, FunctionTool } from "../../../../worker/engine/data/example.js";
import { toolCallTemplates } from "../../../support/tool-call-templates.js";

const TOOLS: FunctionTool[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Weather for a city",
      parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } } },
    },
  },
];

const EXAMPLE: ChatMessage[] = [
  { role: "user", content: "Weather in Paris for 3 days?" },
  {
    role: "assistant",
    content: null,
    tool_calls: [
      {
        id: "call_1",
        type: "function",
        function: { name: "get_weather", arguments: '{"city": "Paris", "days": 3}' },
      },
    ],
  },
  { role: "tool", tool_call_id: "call_1", content: "sunny" },
  { role: "assistant", content: "Sunny." },
] as ChatMessage[];

describe("tool-call examples render their arguments in every template", async () => {
  for (const { name, template } of await toolCallTemplates()) {
    it(`${name}: the call's name and arguments JSON are in the text, never [object …]`, () => {
      const text = template.render({ messages: EXAMPLE, tools: TOOLS });
      assert.doesNotMatch(text, /\[object /);
      assert.ok(text.includes("get_weather"), text);
      assert.ok(
        text.includes('{"city": "Paris", "days": 3}') || text.includes('{"city":"Paris","days":3}'),
        `arguments JSON missing from:\n${text}`,
      );
    });
  }
});
