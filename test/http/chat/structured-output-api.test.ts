// Tool calls, structured output and the sampling parameters through the official SDK on the tiny
// default base model (random weights: whatever it "wants" to say, constrained decoding makes the
// reply a call or JSON of the requested shape), streamed and not.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import type { TestApp } from "../../support/test-app.js";
import { startTinyModelStack, stopStack } from "../../support/test-stack.js";

const MODEL = "tiny-chatml";
const messages = [{ role: "user" as const, content: "What is the weather in Paris?" }];

const WEATHER_PARAMS = {
  type: "object",
  properties: {
    city: { type: "string", enum: ["Paris", "Rome", "Oslo"] },
    unit: { enum: ["c", "f"] },
    days: { type: "integer" },
  },
  required: ["city", "unit", "days"],
  additionalProperties: false,
};

const tools: OpenAI.Chat.ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", description: "Weather", parameters: WEATHER_PARAMS } },
  {
    type: "function",
    function: {
      name: "get_time",
      parameters: { type: "object", properties: { zone: { enum: ["utc", "cet"] } }, required: ["zone"] },
    },
  },
];

const SCHEMA = {
  type: "object",
  properties: {
    answer: { type: "string", enum: ["yes", "no"] },
    confidence: { type: "number" },
    tags: { type: "array", items: { enum: ["a", "b"] } },
    note: { type: ["string", "null"], enum: ["ok", null] },
  },
  required: ["answer", "confidence", "tags", "note"],
  additionalProperties: false,
};

function checkWeatherArgs(args: string) {
  const v = JSON.parse(args);
  assert.deepEqual(Object.keys(v), ["city", "unit", "days"]);
  assert.ok(["Paris", "Rome", "Oslo"].includes(v.city));
  assert.ok(["c", "f"].includes(v.unit));
  assert.ok(Number.isInteger(v.days));
}

describe("tools, structured output and sampling parameters through the SDK", () => {
  const [pglite] = testDatabases();
  let db: TestDatabase;
  let app: TestApp;
  before(async () => {
    ({ db, app } = await startTinyModelStack(pglite));
  });
  after(() => stopStack({ app, db }));

  test("tool_choice naming a function: the reply is that call, arguments valid for its schema", async () => {
    const body = {
      model: MODEL,
      messages,
      tools,
      tool_choice: { type: "function" as const, function: { name: "get_weather" } },
      max_tokens: 80,
      temperature: 0,
    };
    const r = await app.client.chat.completions.create(body);
    const c = r.choices[0];
    assert.equal(c.finish_reason, "tool_calls", JSON.stringify(c.message));
    assert.equal(c.message.content, null);
    assert.equal(c.message.tool_calls?.length, 1);
    const call = c.message.tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
    assert.equal(call.type, "function");
    assert.equal(call.function.name, "get_weather");
    checkWeatherArgs(call.function.arguments);
    // streamed: the SDK's helper assembles the same call from delta.tool_calls
    const stream = app.client.chat.completions.stream(body);
    const final = await stream.finalChatCompletion();
    const streamed = final.choices[0];
    assert.equal(streamed.finish_reason, "tool_calls");
    const sc = streamed.message.tool_calls?.[0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    assert.equal(sc.function.name, "get_weather");
    assert.equal(sc.function.arguments, call.function.arguments);
  });

  test("tool_choice required: a call of one of the tools; sampled with seeds, still well formed", async () => {
    for (const seed of [1, 2, 3]) {
      const r = await app.client.chat.completions.create({
        model: MODEL,
        messages,
        tools,
        tool_choice: "required",
        max_tokens: 200,
        seed,
        temperature: 1,
      });
      const call = r.choices[0].message.tool_calls?.[0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
      assert.ok(call, JSON.stringify(r.choices[0]));
      assert.ok(["get_weather", "get_time"].includes(call.function.name));
      if (call.function.name === "get_weather") checkWeatherArgs(call.function.arguments);
      else assert.ok(["utc", "cet"].includes(JSON.parse(call.function.arguments).zone));
    }
  });

  test("runTools(): the SDK calls our function with the parsed arguments and sends the result back", async () => {
    const seen: unknown[] = [];
    const runner = app.client.chat.completions.runTools(
      {
        model: MODEL,
        messages,
        max_tokens: 150,
        temperature: 0,
        tool_choice: { type: "function", function: { name: "get_weather" } },
        tools: [
          {
            type: "function",
            function: {
              name: "get_weather",
              description: "Weather",
              parameters: WEATHER_PARAMS,
              parse: JSON.parse,
              function: (args: unknown) => {
                seen.push(args);
                return "sunny";
              },
            },
          },
        ],
        // a forced call every time: stop after the first round trip
      },
      { maxChatCompletions: 2 } as never,
    );
    // the forced call repeats every round: the runner stops at maxChatCompletions
    await runner.done().catch(() => undefined);
    assert.ok(seen.length >= 1, "our function was called");
    checkWeatherArgs(JSON.stringify(seen[0]));
    const toolMessages = runner.messages.filter((m) => m.role === "tool");
    assert.ok(toolMessages.length >= 1 && toolMessages[0].content === "sunny");
  });

  test("response_format json_schema (strict): the reply parses and follows the schema, streamed and not", async () => {
    const body = {
      model: MODEL,
      messages,
      max_tokens: 120,
      temperature: 0,
      response_format: {
        type: "json_schema" as const,
        json_schema: { name: "verdict", schema: SCHEMA, strict: true },
      },
    };
    const r = await app.client.chat.completions.create(body);
    assert.equal(r.choices[0].finish_reason, "stop", r.choices[0].message.content ?? "");
    const v = JSON.parse(r.choices[0].message.content!);
    assert.deepEqual(Object.keys(v), ["answer", "confidence", "tags", "note"]);
    assert.ok(["yes", "no"].includes(v.answer));
    assert.equal(typeof v.confidence, "number");
    assert.ok(Array.isArray(v.tags) && v.tags.every((t: string) => t === "a" || t === "b"));
    assert.ok(v.note === "ok" || v.note === null);
    let streamed = "";
    for await (const chunk of await app.client.chat.completions.create({ ...body, stream: true }))
      streamed += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(streamed, r.choices[0].message.content);
    for (const seed of [7, 8]) {
      const s = await app.client.chat.completions.create({ ...body, temperature: 1, seed });
      if (s.choices[0].finish_reason === "stop") JSON.parse(s.choices[0].message.content!);
    }
  });

  test("response_format json_object: the reply is a JSON object when generation stops", async () => {
    for (const seed of [1, 2, 3]) {
      const r = await app.client.chat.completions.create({
        model: MODEL,
        messages,
        max_tokens: 100,
        seed,
        response_format: { type: "json_object" },
      });
      const text = r.choices[0].message.content ?? "";
      assert.ok(text.startsWith("{"), text);
      if (r.choices[0].finish_reason === "stop") {
        const v = JSON.parse(text);
        assert.ok(v && typeof v === "object" && !Array.isArray(v));
      }
    }
  });

  test("unsupported schema keywords are a 400 naming them", async () => {
    await assert.rejects(
      app.client.chat.completions.create({
        model: MODEL,
        messages,
        response_format: {
          type: "json_schema",
          json_schema: { name: "x", schema: { type: "string", pattern: "^a", minLength: 2 } },
        },
      }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.APIError);
        assert.equal(err.status, 400);
        assert.equal(err.param, "response_format.json_schema.schema");
        assert.match(err.message, /'pattern', 'minLength'/);
        return true;
      },
    );
  });

  test("logit_bias, presence and frequency penalties change greedy output as OpenAI defines them", async () => {
    const base = { model: MODEL, messages, max_tokens: 12, temperature: 0, logprobs: true };
    const plain = await app.client.chat.completions.create(base);
    // +100 on one token: greedy picks it every time
    const aId = 97; // the byte "a" in the tiny byte-level vocabulary
    const forced = await app.client.chat.completions.create({ ...base, logit_bias: { [aId]: 100 } });
    assert.equal(forced.choices[0].message.content, "a".repeat(12));
    // two tokens at +100 and a frequency penalty: the one just used falls behind the other
    const both = await app.client.chat.completions.create({
      ...base,
      logit_bias: { [aId]: 100, [aId + 1]: 100 },
      frequency_penalty: 2,
    });
    const text = both.choices[0].message.content ?? "";
    assert.match(text, /^[ab]{12}$/);
    assert.ok(text.includes("a") && text.includes("b"), text);
    // -100 bans a token
    const ban = await app.client.chat.completions.create({ ...base, logit_bias: { [aId]: -100 } });
    assert.ok(!(ban.choices[0].message.content ?? "").includes("a"));
    const pen = await app.client.chat.completions.create({
      ...base,
      presence_penalty: 2,
      frequency_penalty: 1,
    });
    const tokens = pen.choices[0].logprobs!.content!.map((t) => t.token);
    const plainTokens = plain.choices[0].logprobs!.content!.map((t) => t.token);
    assert.ok(new Set(tokens).size >= new Set(plainTokens).size, `${tokens} vs ${plainTokens}`);
    assert.notDeepEqual(tokens, plainTokens);
    // streamed = non-streamed with penalties and bias
    let streamed = "";
    for await (const chunk of await app.client.chat.completions.create({
      ...base,
      presence_penalty: 2,
      frequency_penalty: 1,
      stream: true,
    }))
      streamed += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(streamed, pen.choices[0].message.content);
  });
});
