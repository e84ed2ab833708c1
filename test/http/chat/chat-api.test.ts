// Chat completions and completions through the official SDK on the tiny default base model:
// response shapes, SSE exactly as the SDK reads it, stream = non-stream, seeds, logprobs, and
// the errors a client sees for bad requests.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import OpenAI from "openai";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import type { TestApp } from "../../support/test-app.js";
import { startTinyModelStack, stopStack } from "../../support/test-stack.js";

const MODEL = "tiny-chatml";
const messages = [
  { role: "system" as const, content: "Be brief." },
  { role: "user" as const, content: "Name a colour." },
];

/** The raw SSE events of a streamed request (data payloads, in order). */
async function rawEvents(
  app: TestApp,
  path: string,
  body: unknown,
): Promise<{ status: number; type: string; data: string[] }> {
  const res = await fetch(`${app.baseURL}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${app.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const data = text
    .split("\n\n")
    .filter((e) => e.length > 0)
    .map((e) => {
      assert.match(e, /^data: /, `every event is a data line: ${JSON.stringify(e)}`);
      return e.slice("data: ".length);
    });
  return { status: res.status, type: res.headers.get("content-type") ?? "", data };
}

async function expectError(
  p: Promise<unknown>,
  status: number,
  check: { param?: string | null; code?: string; message?: RegExp },
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof OpenAI.APIError, `an APIError, got ${err}`);
    assert.equal(err.status, status, err.message);
    if (check.param !== undefined) assert.equal(err.param, check.param);
    if (check.code !== undefined) assert.equal(err.code, check.code);
    if (check.message) assert.match(err.message, check.message);
    return true;
  });
}

describe("chat completions on a base model", () => {
  const [pglite] = testDatabases();
  let db: TestDatabase;
  let app: TestApp;
  before(async () => {
    ({ db, app } = await startTinyModelStack(pglite));
  });
  after(() => stopStack({ app, db }));

  test("non-streamed: OpenAI's shape, usage, finish_reason length at max_tokens", async () => {
    const r = await app.client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 6,
      temperature: 0,
    });
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.object, "chat.completion");
    assert.equal(r.model, MODEL);
    assert.ok(
      Number.isInteger(r.created) && Math.abs(r.created - Date.now() / 1000) < 60,
      "created in seconds",
    );
    assert.equal(r.choices.length, 1);
    const [c] = r.choices;
    assert.deepEqual(
      [c.index, c.message.role, c.message.refusal, c.logprobs, c.finish_reason],
      [0, "assistant", null, null, "length"],
    );
    assert.equal(typeof c.message.content, "string");
    assert.equal(r.usage?.completion_tokens, 6);
    assert.ok((r.usage?.prompt_tokens ?? 0) > 10);
    assert.equal(r.usage?.total_tokens, (r.usage?.prompt_tokens ?? 0) + 6);
    assert.match(r._request_id ?? "", /^req_/);
    // a string naming the serving configuration (the spec types it as a string, never null)
    assert.match(r.system_fingerprint ?? "", /^fp_[0-9a-f]{10}$/);
  });

  test("streamed: role first, one finish_reason, usage chunk, [DONE]; same text as non-streamed", async () => {
    const body = { model: MODEL, messages, max_tokens: 8, temperature: 0 };
    const whole = await app.client.chat.completions.create(body);
    const { status, type, data } = await rawEvents(app, "/chat/completions", {
      ...body,
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(status, 200);
    assert.match(type, /^text\/event-stream/);
    assert.equal(data.at(-1), "[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    assert.ok(new Set(chunks.map((c) => c.id)).size === 1 && chunks[0].id.startsWith("chatcmpl-"));
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
    assert.ok(
      chunks.every(
        (c) => c.system_fingerprint === whole.system_fingerprint && typeof c.system_fingerprint === "string",
      ),
    );
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, whole.usage);
    const body2 = chunks.slice(0, -1);
    assert.ok(
      body2.every((c) => c.usage === null),
      "include_usage: usage null on every other chunk",
    );
    assert.equal(body2[0].choices[0].delta.role, "assistant");
    assert.equal(body2.filter((c) => c.choices[0].finish_reason !== null).length, 1);
    assert.equal(body2.at(-1).choices[0].finish_reason, "length");
    const text = body2.map((c) => c.choices[0].delta.content ?? "").join("");
    assert.equal(text, whole.choices[0].message.content);
  });

  test("the SDK's stream() helper and finalChatCompletion() accept the stream", async () => {
    const body = { model: MODEL, messages, max_completion_tokens: 5, temperature: 0 };
    const whole = await app.client.chat.completions.create(body);
    const deltas: string[] = [];
    const stream = app.client.chat.completions.stream(body);
    stream.on("content", (delta) => deltas.push(delta));
    const final = await stream.finalChatCompletion();
    assert.equal(final.choices[0].message.content, whole.choices[0].message.content);
    assert.equal(final.choices[0].finish_reason, "length");
    assert.equal(deltas.join(""), whole.choices[0].message.content);
  });

  test("n = 2 with a seed: streamed choices equal the non-streamed ones, each with role and finish", async () => {
    const body = { model: MODEL, messages, max_tokens: 6, temperature: 1, n: 2, seed: 11 };
    const whole = await app.client.chat.completions.create(body);
    assert.deepEqual(
      whole.choices.map((c) => c.index),
      [0, 1],
    );
    assert.notEqual(
      whole.choices[0].message.content,
      whole.choices[1].message.content,
      "choices sample differently",
    );
    const texts = ["", ""];
    const roles = [0, 0];
    const finishes = [0, 0];
    for await (const chunk of await app.client.chat.completions.create({ ...body, stream: true })) {
      for (const c of chunk.choices) {
        texts[c.index] += c.delta.content ?? "";
        if (c.delta.role) roles[c.index]++;
        if (c.finish_reason) finishes[c.index]++;
      }
    }
    assert.deepEqual(
      texts,
      whole.choices.map((c) => c.message.content),
    );
    assert.deepEqual(
      [roles, finishes],
      [
        [1, 1],
        [1, 1],
      ],
    );
  });

  test("seed: the same seed gives the same sampled text, another seed another", async () => {
    const body = { model: MODEL, messages, max_tokens: 12, temperature: 1, top_p: 0.95 };
    const a = await app.client.chat.completions.create({ ...body, seed: 1234 });
    const b = await app.client.chat.completions.create({ ...body, seed: 1234 });
    const c = await app.client.chat.completions.create({ ...body, seed: 4321 });
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    assert.notEqual(a.choices[0].message.content, c.choices[0].message.content);
  });

  test("logprobs with top_logprobs: one entry per token, alternatives sorted, greedy picks the top", async () => {
    const r = await app.client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 5,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
    });
    const content = r.choices[0].logprobs?.content ?? [];
    assert.equal(content.length, 5);
    for (const t of content) {
      assert.equal(t.top_logprobs.length, 3);
      assert.ok(t.logprob <= 0);
      assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob);
      assert.equal(t.logprob, t.top_logprobs[0].logprob);
      for (const alt of t.top_logprobs) assert.ok(Array.isArray(alt.bytes), JSON.stringify(alt));
    }
    // each token's own bytes: joined, they are the text
    assert.deepEqual(
      Buffer.from(content.flatMap((t) => t.bytes ?? [])).toString("utf8"),
      r.choices[0].message.content,
    );
  });

  test("completions: text, echo, logprobs, several prompts, stream = non-stream", async () => {
    const body = { model: MODEL, prompt: "The weather today", max_tokens: 6, temperature: 0 };
    const r = await app.client.completions.create(body);
    assert.equal(r.object, "text_completion");
    assert.match(r.system_fingerprint ?? "", /^fp_[0-9a-f]{10}$/);
    assert.match(r.id, /^cmpl-/);
    assert.deepEqual(
      [r.choices[0].index, r.choices[0].finish_reason, r.choices[0].logprobs],
      [0, "length", null],
    );
    assert.equal(r.usage?.completion_tokens, 6);
    let streamed = "";
    for await (const chunk of await app.client.completions.create({ ...body, stream: true }))
      streamed += chunk.choices[0]?.text ?? "";
    assert.equal(streamed, r.choices[0].text);
    const echoed = await app.client.completions.create({ ...body, echo: true, logprobs: 2 });
    assert.equal(echoed.choices[0].text, `The weather today${r.choices[0].text}`);
    const lp = echoed.choices[0].logprobs!;
    assert.equal(lp.tokens?.length, 6);
    assert.equal(lp.top_logprobs?.length, 6);
    assert.equal(lp.text_offset?.[0], "The weather today".length);
    const two = await app.client.completions.create({ ...body, prompt: ["The weather today", "Once upon"] });
    assert.deepEqual(
      two.choices.map((c) => c.index),
      [0, 1],
    );
    assert.equal(two.choices[0].text, r.choices[0].text);
  });

  test("tool calls, tool results and text parts render through the chat template", async () => {
    const withTools = await app.client.chat.completions.create({
      model: MODEL,
      max_tokens: 2,
      messages: [
        { role: "user", content: [{ type: "text", text: "Weather in Paris?" }] },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "weather", arguments: '{"city":"Paris"}' } },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "sunny" },
      ],
    });
    const plain = await app.client.chat.completions.create({
      model: MODEL,
      max_tokens: 2,
      messages: [{ role: "user", content: "Weather in Paris?" }],
    });
    // the call and its result are in the prompt: the tiny template writes them out
    assert.ok((withTools.usage?.prompt_tokens ?? 0) > (plain.usage?.prompt_tokens ?? 0) + 20);
  });

  test("a client that goes away mid-stream stops the generation (its KV cache is freed at once)", async () => {
    await app.client.chat.completions.create({ model: MODEL, messages, max_tokens: 2 });
    const baseline = tf.memory().numTensors;
    const stream = await app.client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 2000,
      temperature: 0,
      stream: true,
    });
    let chunks = 0;
    for await (const _ of stream) if (++chunks === 3) break; // leaving the loop aborts the request
    // 2000 tokens would take seconds; a stopped generation frees its cache within a token or two
    const until = Date.now() + 1000;
    while (tf.memory().numTensors !== baseline && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(tf.memory().numTensors, baseline);
  });

  test("bad requests: 404 model_not_found, 400 with the param, the context length named", async () => {
    const chat = app.client.chat.completions;
    await expectError(chat.create({ model: "no-such-model", messages }), 404, {
      code: "model_not_found",
      param: "model",
    });
    await expectError(chat.create({ model: "ft:tiny-chatml:x::ftjob-nope", messages, stream: true }), 404, {
      code: "model_not_found",
    });
    await expectError(chat.create({ model: MODEL, messages, temperature: 3 }), 400, { param: "temperature" });
    await expectError(chat.create({ model: MODEL, messages, n: 0 }), 400, { param: "n" });
    await expectError(chat.create({ model: MODEL, messages, top_p: 1.5 }), 400, { param: "top_p" });
    await expectError(chat.create({ model: MODEL, messages, max_tokens: 0 }), 400, { param: "max_tokens" });
    await expectError(chat.create({ model: MODEL, messages: [] }), 400, { param: "messages" });
    await expectError(chat.create({ model: MODEL, messages, top_logprobs: 2 }), 400, {
      param: "top_logprobs",
    });
    await expectError(chat.create({ model: MODEL, messages, stop: ["a", "b", "c", "d", "e"] }), 400, {
      param: "stop",
    });
    await expectError(chat.create({ model: MODEL, messages, presence_penalty: 2.5 }), 400, {
      param: "presence_penalty",
    });
    await expectError(chat.create({ model: MODEL, messages, logit_bias: { "99999": 5 } }), 400, {
      param: "logit_bias",
      message: /Maximum value is 319/,
    });
    await expectError(chat.create({ model: MODEL, messages, logit_bias: { "5": 101 } }), 400, {
      param: "logit_bias.5",
    });
    await expectError(chat.create({ model: MODEL, messages, tool_choice: "required" }), 400, {
      param: "tool_choice",
    });
    await expectError(
      chat.create({
        model: MODEL,
        messages,
        tools: [{ type: "function", function: { name: "a" } }],
        tool_choice: { type: "function", function: { name: "b" } },
      }),
      400,
      { param: "tool_choice", message: /no function named 'b'/ },
    );
    await expectError(
      chat.create({ model: MODEL, messages: [{ role: "wizard", content: "hi" } as never] }),
      400,
      { param: "messages.0.role" },
    );
    await expectError(
      chat.create({
        model: MODEL,
        messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "http://x/y.png" } }] }],
      }),
      400,
      { param: "messages.0.content.0.type" },
    );
    const long = "word ".repeat(2100);
    await expectError(chat.create({ model: MODEL, messages: [{ role: "user", content: long }] }), 400, {
      param: "messages",
      code: "context_length_exceeded",
      message: /maximum context length is 2048 tokens/,
    });
    await expectError(chat.create({ model: MODEL, messages, max_tokens: 2047 }), 400, {
      code: "context_length_exceeded",
      message: /2048 tokens.*in the completion/,
    });
    await expectError(app.client.completions.create({ model: MODEL, prompt: "x", suffix: "y" }), 400, {
      param: "suffix",
    });
    await expectError(app.client.completions.create({ model: MODEL, prompt: [[999999]] }), 400, {
      param: "prompt",
    });
  });
});
