// NUL and lone surrogates cannot be stored in Postgres text: wherever they come in (path ids,
// query cursors and filters, JSON bodies, metadata keys and values, multipart fields and file
// names) the answer is a 400 naming the parameter, never a 500, and nothing is written.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sql } from "drizzle-orm";
import { findUnstorableText } from "../../src/http/input-guard.js";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import { envelopeOf, rawRequest } from "../support/raw-http.js";
import type { TestApp } from "../support/test-app.js";
import { startAppStack, stopStack } from "../support/test-stack.js";

interface Case {
  method: string;
  path: string;
  /** JSON body (serialized with JSON.stringify: a lone surrogate goes as a \ud800 escape) */
  json?: unknown;
  multipart?: { boundary: string; body: Buffer };
  /** the param the 400 names; undefined = only the status is checked */
  param?: string | null;
}

const NUL = "\u0000";
const SURROGATE = "\ud800";
const LOW_SURROGATE = "\udfff";

function multipart(parts: { name: string; filename?: string; value: string }[]): Case["multipart"] {
  const boundary = "----fuzzboundary7MA4YWxkTrZu0gW";
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ""}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n`));
    if (p.filename !== undefined) chunks.push(Buffer.from("Content-Type: application/jsonl\r\n"));
    chunks.push(Buffer.from(`\r\n${p.value}\r\n`));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { boundary, body: Buffer.concat(chunks) };
}

const LINE = '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}\n';
const upload = { filename: "a.jsonl", purpose: "fine-tune", bytes: 10, mime_type: "application/jsonl" };
const job = { model: "tiny-chatml", training_file: "file-abc" };
const chat = { model: "tiny-chatml", messages: [{ role: "user", content: "hi" }] };

function cases(bad: string, encoded: string): Case[] {
  return [
    { method: "GET", path: `/v1/files/file-${encoded}`, param: "file_id" },
    { method: "DELETE", path: `/v1/files/file-${encoded}`, param: "file_id" },
    { method: "GET", path: `/v1/files/file-${encoded}/content`, param: "file_id" },
    { method: "GET", path: `/v1/files?after=${encoded}`, param: "after" },
    { method: "GET", path: `/v1/files?purpose=${encoded}`, param: "purpose" },
    { method: "GET", path: `/v1/files?order=${encoded}`, param: "order" },
    {
      method: "POST",
      path: "/v1/uploads",
      json: { ...upload, filename: `a${bad}.jsonl` },
      param: "filename",
    },
    {
      method: "POST",
      path: "/v1/uploads",
      json: { ...upload, mime_type: `text/${bad}` },
      param: "mime_type",
    },
    { method: "POST", path: "/v1/uploads", json: { ...upload, purpose: bad }, param: "purpose" },
    { method: "POST", path: `/v1/uploads/upload_${encoded}/cancel`, param: "upload_id" },
    {
      method: "POST",
      path: `/v1/uploads/upload_${encoded}/complete`,
      json: { part_ids: [] },
      param: "upload_id",
    },
    {
      method: "POST",
      path: "/v1/uploads/upload_x/complete",
      json: { part_ids: [`part_${bad}`] },
      param: "part_ids.0",
    },
    { method: "POST", path: "/v1/uploads/upload_x/complete", json: { part_ids: [], md5: bad }, param: "md5" },
    {
      method: "POST",
      path: `/v1/uploads/upload_${encoded}/parts`,
      multipart: multipart([{ name: "data", filename: "d", value: "x" }]),
      param: "upload_id",
    },
    { method: "GET", path: `/v1/models/${encoded}`, param: "model" },
    { method: "DELETE", path: `/v1/models/ft:${encoded}`, param: "model" },
    { method: "GET", path: `/v1/models/org/${encoded}`, param: "name" },
    { method: "POST", path: "/v1/fine_tuning/jobs", json: { ...job, model: bad }, param: "model" },
    {
      method: "POST",
      path: "/v1/fine_tuning/jobs",
      json: { ...job, training_file: `file-${bad}` },
      param: "training_file",
    },
    {
      method: "POST",
      path: "/v1/fine_tuning/jobs",
      json: { ...job, validation_file: bad },
      param: "validation_file",
    },
    { method: "POST", path: "/v1/fine_tuning/jobs", json: { ...job, suffix: bad }, param: "suffix" },
    {
      method: "POST",
      path: "/v1/fine_tuning/jobs",
      json: { ...job, metadata: { k: bad } },
      param: "metadata.k",
    },
    {
      method: "POST",
      path: "/v1/fine_tuning/jobs",
      json: { ...job, metadata: { [`k${bad}`]: "v" } },
      param: "metadata",
    },
    {
      method: "POST",
      path: "/v1/fine_tuning/jobs",
      json: { ...job, integrations: [{ type: "wandb", wandb: { project: bad } }] },
      param: "integrations.0.wandb.project",
    },
    { method: "GET", path: `/v1/fine_tuning/jobs?after=${encoded}`, param: "after" },
    { method: "GET", path: `/v1/fine_tuning/jobs?metadata[k]=${encoded}`, param: "metadata.k" },
    { method: "GET", path: `/v1/fine_tuning/jobs?metadata[${encoded}]=v`, param: "metadata" },
    ...[
      "",
      "/cancel",
      "/pause",
      "/resume",
      "/events",
      "/checkpoints",
      "/adapter",
      "/checkpoints/ckpt/adapter",
    ].map(
      (tail): Case => ({
        method: ["/cancel", "/pause", "/resume"].includes(tail) ? "POST" : "GET",
        path: `/v1/fine_tuning/jobs/ftjob-${encoded}${tail}`,
        param: "fine_tuning_job_id",
      }),
    ),
    { method: "GET", path: `/v1/fine_tuning/jobs/ftjob-x/events?after=${encoded}`, param: "after" },
    { method: "GET", path: `/v1/fine_tuning/jobs/ftjob-x/checkpoints?after=${encoded}`, param: "after" },
    {
      method: "GET",
      path: `/v1/fine_tuning/jobs/ftjob-x/checkpoints/ckpt-${encoded}/adapter`,
      param: "checkpoint_id",
    },
    { method: "POST", path: "/v1/chat/completions", json: { ...chat, model: bad }, param: "model" },
    { method: "POST", path: "/v1/chat/completions", json: { ...chat, user: bad }, param: "user" },
    {
      method: "POST",
      path: "/v1/chat/completions",
      json: { ...chat, metadata: { k: bad } },
      param: "metadata.k",
    },
    { method: "POST", path: "/v1/completions", json: { model: bad, prompt: "x" }, param: "model" },
    {
      method: "POST",
      path: "/v1/files",
      multipart: multipart([
        { name: "purpose", value: bad },
        { name: "file", filename: "t.jsonl", value: LINE },
      ]),
      param: "purpose",
    },
    {
      method: "POST",
      path: "/v1/files",
      multipart: multipart([
        { name: "purpose", value: "fine-tune" },
        { name: "expires_after[anchor]", value: bad },
        { name: "file", filename: "t.jsonl", value: LINE },
      ]),
      param: "expires_after.anchor",
    },
    {
      method: "POST",
      path: "/v1/files",
      multipart: multipart([
        { name: "purpose", value: "fine-tune" },
        { name: "file", filename: `t${bad}.jsonl`, value: LINE },
      ]),
      param: "file",
    },
    {
      method: "POST",
      path: "/v1/files",
      multipart: multipart([
        { name: "file", filename: `t${bad}.jsonl`, value: LINE },
        { name: "purpose", value: "fine-tune" },
      ]),
      param: "file",
    },
  ];
}

describe("findUnstorableText", () => {
  it("names the path of a bad value or key, and passes good text (emoji pairs included)", () => {
    assert.equal(findUnstorableText({ a: ["ok", "😀", { b: `x${NUL}` }] }, "")?.param, "a.2.b");
    assert.equal(findUnstorableText({ a: { [`k${SURROGATE}`]: 1 } }, "")?.param, "a");
    assert.equal(findUnstorableText([`${LOW_SURROGATE}x`], "p")?.param, "p.0");
    assert.equal(findUnstorableText({ a: "日本語€😀", b: [1, null, true] }, ""), null);
    assert.equal(findUnstorableText(`😀`.slice(0, 1), "x")?.param, "x");
  });
});

for (const target of testDatabases()) {
  describe(`NUL and lone surrogates [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    before(async () => {
      ({ db, app } = await startAppStack(target));
    });
    after(() => stopStack({ app, db }));

    const rowCounts = async () =>
      (
        (await app.database.db.execute(
          sql`SELECT (SELECT count(*) FROM files)::int AS files, (SELECT count(*) FROM uploads)::int AS uploads,
                     (SELECT count(*) FROM fine_tuning_jobs)::int AS jobs, (SELECT count(*) FROM blobs)::int AS blobs`,
        )) as unknown as { rows: unknown[] }
      ).rows[0];

    for (const [label, bad, encoded] of [
      ["NUL", NUL, "%00"],
      ["a lone high surrogate", SURROGATE, "%ED%A0%80"],
      ["a lone low surrogate", LOW_SURROGATE, "%ED%BF%BF"],
    ] as const) {
      it(`${label}: every route answers 400 naming the param, and writes nothing`, async () => {
        const before = await rowCounts();
        const failures: string[] = [];
        for (const c of cases(bad, encoded)) {
          let param = c.param;
          if (bad !== NUL) {
            // qs keeps an escape that is not UTF-8 as literal text, which is storable
            if (c.path.includes(`?`) && c.path.includes(encoded)) continue;
            // multipart bytes are decoded as UTF-8: a surrogate's bytes become U+FFFD
            if (c.multipart && c.param === "file") continue;
            // a surrogate's bytes in a path are not UTF-8: the router refuses the whole URL
            if (c.path.includes(encoded)) param = null;
          }
          const headers: Record<string, string> = { authorization: `Bearer ${app.apiKey}` };
          let body: string | Buffer | undefined;
          if (c.json !== undefined) {
            headers["content-type"] = "application/json";
            body = JSON.stringify(c.json);
          } else if (c.multipart) {
            headers["content-type"] = `multipart/form-data; boundary=${c.multipart.boundary}`;
            body = c.multipart.body;
          }
          const res = await rawRequest(app.origin, c.method, c.path, { headers, body });
          const e = envelopeOf(res.text);
          const sent = body === undefined ? "" : JSON.stringify(String(body)).slice(0, 160);
          const what = `${c.method} ${c.path} ${sent} → ${res.status} ${res.text.slice(0, 240)}`;
          if (res.status !== 400 || !e) failures.push(what);
          else if (e.param !== param) failures.push(`param ${e.param} ≠ ${param}: ${what}`);
        }
        assert.deepEqual(failures, []);
        assert.deepEqual(await rowCounts(), before);
        const health = await fetch(`${app.origin}/health`);
        assert.equal(health.status, 200);
      });
    }
  });
}
