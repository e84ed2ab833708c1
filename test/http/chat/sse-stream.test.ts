// The SSE writer against the SDK: chunks arrive as sent, and an error after the stream started
// (the status line is already 200) reaches the caller as an APIError with OpenAI's fields.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import OpenAI from "openai";
import { ApiError } from "../../../src/http/api-error.js";
import { SseStream } from "../../../src/http/chat/sse-stream.js";

const chunk = (content: string, finish: "stop" | null = null) => ({
  id: "chatcmpl-x",
  object: "chat.completion.chunk",
  created: 1,
  model: "m",
  choices: [{ index: 0, delta: { role: "assistant", content }, finish_reason: finish }],
});

describe("SseStream", () => {
  let app: FastifyInstance;
  let client: OpenAI;
  before(async () => {
    app = Fastify();
    app.post("/v1/chat/completions", async (request, reply) => {
      const sse = new SseStream(request, reply);
      const { messages } = request.body as { messages: { content: string }[] };
      sse.send(chunk("Hel"));
      if (messages[0].content === "fail") {
        sse.fail(
          new ApiError(500, "the model failed mid-generation", { code: "generation_failed" }).toEnvelope(),
        );
      } else {
        sse.send(chunk("lo", "stop"));
        sse.end();
      }
      return reply;
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const address = app.server.address();
    if (!address || typeof address === "string") throw new Error("no address");
    client = new OpenAI({ apiKey: "k", baseURL: `http://127.0.0.1:${address.port}/v1`, maxRetries: 0 });
  });
  after(() => app.close());

  test("chunks in order, then [DONE]; the request id header is sent", async () => {
    const stream = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "ok" }],
      stream: true,
    });
    const texts: string[] = [];
    for await (const c of stream) texts.push(c.choices[0].delta.content ?? "");
    assert.deepEqual(texts, ["Hel", "lo"]);
    const res = await fetch(`${client.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ content: "ok" }] }),
    });
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.ok(res.headers.get("x-request-id"));
    assert.ok((await res.text()).endsWith("data: [DONE]\n\n"));
  });

  test("an error event after the start is raised by the SDK with its message and code", async () => {
    const stream = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "fail" }],
      stream: true,
    });
    const texts: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const c of stream) texts.push(c.choices[0].delta.content ?? "");
      })(),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.APIError);
        assert.match(err.message, /the model failed mid-generation/);
        assert.equal((err.error as { code?: string }).code, "generation_failed");
        return true;
      },
    );
    assert.deepEqual(texts, ["Hel"]);
  });
});
