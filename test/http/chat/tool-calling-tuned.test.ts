// Function calling end to end on the tiny default model: a job trained on OpenAI-format
// function-calling lines (`tools` + assistant `tool_calls`) serves the same calls back through
// the SDK: `message.tool_calls` with the trained name and arguments, finish_reason "tool_calls",
// streamed calls assembled by the SDK's stream helper, and plain answers where it learnt them.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type OpenAI from "openai";
import type { RunningWorker } from "../../../worker/worker-loop.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import { trainMemorisingJob } from "../../support/job-fixtures.js";
import type { TestApp } from "../../support/test-app.js";
import { startJobsStack, stopStack } from "../../support/test-stack.js";

const TOOLS: OpenAI.Chat.ChatCompletionTool[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Current weather for a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  },
];

const CITIES = ["Paris", "Rome", "Oslo"];
const question = (city: string) => `Weather in ${city}?`;

/** 12 lines: each city's question answered by a call, plus a greeting answered in text. */
function functionCallingLines(): string {
  return Array.from({ length: 12 }, (_, i) => {
    if (i % 4 === 3)
      return JSON.stringify({
        messages: [
          { role: "user", content: "Hello!" },
          { role: "assistant", content: "Hi." },
        ],
        tools: TOOLS,
      });
    const city = CITIES[i % 4];
    return JSON.stringify({
      messages: [
        { role: "user", content: question(city) },
        {
          role: "assistant",
          tool_calls: [
            {
              id: `call_${i}`,
              type: "function",
              function: { name: "get_weather", arguments: JSON.stringify({ city }) },
            },
          ],
        },
      ],
      tools: TOOLS,
    });
  }).join("\n");
}

describe("a model tuned on function-calling data calls functions through the SDK", () => {
  const [pglite] = testDatabases();
  let db: TestDatabase;
  let app: TestApp;
  let worker: RunningWorker;
  let tuned: string;

  before(async () => {
    let model: string;
    ({ db, app, worker, model } = await startJobsStack(pglite));
    const lines = functionCallingLines();
    const done = await trainMemorisingJob(app.client, {
      model,
      lines,
      maxSeqLength: 160,
      timeoutMs: 400_000,
    });
    tuned = done.fine_tuned_model!;
  });
  after(() => stopStack({ worker, app, db }));

  test("tools + auto: each trained question comes back as the trained call; a greeting as text", async () => {
    for (const city of CITIES) {
      const r = await app.client.chat.completions.create({
        model: tuned,
        messages: [{ role: "user", content: question(city) }],
        tools: TOOLS,
        temperature: 0,
        max_tokens: 100,
      });
      const c = r.choices[0];
      assert.equal(c.finish_reason, "tool_calls", JSON.stringify(c));
      assert.equal(c.message.content, null);
      const call = c.message.tool_calls?.[0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
      assert.equal(call.type, "function");
      assert.equal(call.function.name, "get_weather");
      assert.deepEqual(JSON.parse(call.function.arguments), { city });
    }
    const hello = await app.client.chat.completions.create({
      model: tuned,
      messages: [{ role: "user", content: "Hello!" }],
      tools: TOOLS,
      temperature: 0,
      max_tokens: 20,
    });
    assert.equal(hello.choices[0].finish_reason, "stop");
    assert.equal(hello.choices[0].message.content, "Hi.");
    assert.equal(hello.choices[0].message.tool_calls, undefined);
  });

  test("streamed: the SDK's stream helper assembles the same call from delta.tool_calls", async () => {
    const stream = app.client.chat.completions.stream({
      model: tuned,
      messages: [{ role: "user", content: question("Rome") }],
      tools: TOOLS,
      temperature: 0,
      max_tokens: 100,
    });
    const names: string[] = [];
    stream.on("tool_calls.function.arguments.done", (e) => names.push(e.name));
    const final = await stream.finalChatCompletion();
    const c = final.choices[0];
    assert.equal(c.finish_reason, "tool_calls");
    const call = c.message.tool_calls?.[0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    assert.match(call.id, /^call_/);
    assert.deepEqual(JSON.parse(call.function.arguments), { city: "Rome" });
    assert.deepEqual(names, ["get_weather"]);
  });
});
