// Numbers from callers: list limits take plain decimal integers in range (1e309, -1e309, 1.5,
// 0x10 are 400 naming `limit`), JSON numbers must be finite, /v1/completions takes integer
// token ids within the vocabulary and a bounded batch, and an Upload's parts cannot hold more
// than the bytes it was created with.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sql } from "drizzle-orm";
import OpenAI, { toFile } from "openai";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import { envelopeOf, rawRequest } from "../support/raw-http.js";
import type { TestApp } from "../support/test-app.js";
import { startTinyModelStack, stopStack } from "../support/test-stack.js";

const BAD_LIMITS = [
  "1e309",
  "-1e309",
  "1.5",
  "0x10",
  "%205",
  "1e2",
  "abc",
  "",
  "-1",
  "0",
  "99999999999999999999",
  "Infinity",
  "NaN",
];
const LISTS = [
  "/v1/files",
  "/v1/fine_tuning/jobs",
  "/v1/fine_tuning/jobs/ftjob-none/events",
  "/v1/fine_tuning/jobs/ftjob-none/checkpoints",
];

async function rejection(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await promise.then(
    () => assert.fail("expected the request to fail"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof OpenAI.APIError, String(err));
  return err;
}

describe("numeric parameters", () => {
  const [pglite] = testDatabases();
  let db: TestDatabase;
  let app: TestApp;
  before(async () => {
    ({ db, app } = await startTinyModelStack(pglite));
  });
  after(() => stopStack({ app, db }));
  const auth = () => ({ authorization: `Bearer ${app.apiKey}` });

  it("list limits: anything but an in-range decimal integer is 400 naming limit", async () => {
    const failures: string[] = [];
    for (const list of LISTS) {
      for (const limit of BAD_LIMITS) {
        const res = await rawRequest(app.origin, "GET", `${list}?limit=${limit}`, { headers: auth() });
        const e = envelopeOf(res.text);
        if (res.status !== 400 || e?.param !== "limit")
          failures.push(`${list}?limit=${limit} → ${res.status} ${res.text.slice(0, 200)}`);
      }
      const ok = await rawRequest(app.origin, "GET", `${list}?limit=5`, { headers: auth() });
      if (ok.status !== 200 && ok.status !== 404) failures.push(`${list}?limit=5 → ${ok.status}`);
    }
    assert.deepEqual(failures, []);
  });

  it("a JSON number that overflows to Infinity is 400 naming its field", async () => {
    const cases: [string, string, string][] = [
      [
        "/v1/uploads",
        '{"filename":"a","purpose":"fine-tune","bytes":1e309,"mime_type":"text/plain"}',
        "bytes",
      ],
      [
        "/v1/fine_tuning/jobs",
        '{"model":"tiny-chatml","training_file":"file-x","method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":1e309}}}}',
        "method.supervised.hyperparameters.n_epochs",
      ],
      [
        "/v1/chat/completions",
        '{"model":"tiny-chatml","messages":[{"role":"user","content":"hi"}],"temperature":-1e309}',
        "temperature",
      ],
      ["/v1/completions", '{"model":"tiny-chatml","prompt":"hi","seed":1e309}', "seed"],
    ];
    for (const [path, body, param] of cases) {
      const res = await rawRequest(app.origin, "POST", path, {
        headers: { ...auth(), "content-type": "application/json" },
        body,
      });
      assert.equal(res.status, 400, `${path}: ${res.text}`);
      assert.equal(envelopeOf(res.text)?.param, param, `${path}: ${res.text}`);
    }
  });

  it("/v1/completions: token ids must be integers in the vocabulary", async () => {
    for (const prompt of [
      [1.5, 2],
      [999999],
      [999999, -1],
      [[3, 4], [2.5]],
      ["a", 1],
      [],
      [[]],
    ] as unknown[]) {
      const err = await rejection(
        app.client.completions.create({ model: "tiny-chatml", prompt: prompt as number[], max_tokens: 1 }),
      );
      assert.equal(err.status, 400, JSON.stringify(prompt));
      assert.match(err.param ?? "", /^prompt(\.\d+)*$/, `${JSON.stringify(prompt)}: ${err.message}`);
    }
    const ok = await app.client.completions.create({
      model: "tiny-chatml",
      prompt: [3, 4, 5],
      max_tokens: 1,
      temperature: 0,
    });
    assert.equal(ok.choices.length, 1);
  });

  it("/v1/completions: at most 128 prompts, and at most 128 choices in all", async () => {
    const many = await rejection(
      app.client.completions.create({
        model: "tiny-chatml",
        prompt: Array.from({ length: 129 }, () => "x"),
        max_tokens: 1,
      }),
    );
    assert.equal(many.status, 400);
    assert.equal(many.param, "prompt");
    assert.match(many.message, /128/);
    const manyIds = await rejection(
      app.client.completions.create({
        model: "tiny-chatml",
        prompt: Array.from({ length: 10_000 }, () => [1]),
        max_tokens: 1,
      }),
    );
    assert.equal(manyIds.param, "prompt");
    const choices = await rejection(
      app.client.completions.create({
        model: "tiny-chatml",
        prompt: Array.from({ length: 64 }, () => "x"),
        n: 4,
        max_tokens: 1,
      }),
    );
    assert.equal(choices.param, "n");
  });

  it("stop with 5 sequences says at most 4", async () => {
    for (const create of [
      () =>
        app.client.chat.completions.create({
          model: "tiny-chatml",
          messages: [{ role: "user", content: "hi" }],
          stop: ["a", "b", "c", "d", "e"],
        }),
      () =>
        app.client.completions.create({
          model: "tiny-chatml",
          prompt: "hi",
          stop: ["a", "b", "c", "d", "e"],
        }),
    ]) {
      const err = await rejection(create());
      assert.equal(err.status, 400);
      assert.equal(err.param, "stop");
      assert.match(err.message, /at most 4/);
    }
  });

  it("an Upload's parts cannot hold more than its declared bytes", async () => {
    const parts = async () =>
      (
        (await app.database.db.execute(sql`SELECT count(*)::int AS n FROM upload_parts`)) as unknown as {
          rows: { n: number }[];
        }
      ).rows[0].n;
    const upload = await app.client.uploads.create({
      filename: "a.jsonl",
      purpose: "batch",
      bytes: 10,
      mime_type: "text/plain",
    });
    const before = await parts();
    const big = await rejection(
      app.client.uploads.parts.create(upload.id, { data: await toFile(Buffer.alloc(11, 97), "p") }),
    );
    assert.equal(big.status, 400);
    assert.equal(big.param, "data");
    assert.equal(await parts(), before);
    await app.client.uploads.parts.create(upload.id, { data: await toFile(Buffer.alloc(6, 97), "p") });
    const second = await rejection(
      app.client.uploads.parts.create(upload.id, { data: await toFile(Buffer.alloc(6, 97), "p") }),
    );
    assert.equal(second.status, 400);
    assert.equal(second.param, "data");
    assert.equal(await parts(), before + 1);
    await app.client.uploads.parts.create(upload.id, { data: await toFile(Buffer.alloc(4, 97), "p") });
    assert.equal(await parts(), before + 2);
  });
});
