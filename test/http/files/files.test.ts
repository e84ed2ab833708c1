// Files API through the official OpenAI SDK over real HTTP, on every test database.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sql } from "drizzle-orm";
import OpenAI, { toFile } from "openai";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import { chatJsonl, chatJsonlOfSize } from "../../support/jsonl.js";
import type { TestApp } from "../../support/test-app.js";
import { startAppStack, stopStack } from "../../support/test-stack.js";

const MAX_FILE_BYTES = 8 * 1024 * 1024;
const MAX_LINE_BYTES = 4096;

async function countRows(app: TestApp): Promise<{ files: number; blobs: number; chunks: number }> {
  const result = (await app.database.db.execute(
    sql`SELECT (SELECT count(*) FROM files)::int AS files, (SELECT count(*) FROM blobs)::int AS blobs,
               (SELECT count(*) FROM blob_chunks)::int AS chunks`,
  )) as unknown as { rows: { files: number; blobs: number; chunks: number }[] };
  return result.rows[0];
}

async function expectApiError(
  promise: Promise<unknown>,
  expected: {
    cls: abstract new (...args: never[]) => Error;
    status: number;
    param?: string | null;
    code?: string;
    message?: RegExp;
  },
): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await promise.then(
    () => assert.fail("expected the request to fail"),
    (e: unknown) => e,
  );
  assert.ok(
    err instanceof expected.cls,
    `expected ${expected.cls.name}, got ${(err as Error)?.constructor?.name}: ${err}`,
  );
  const apiErr = err as InstanceType<typeof OpenAI.APIError>;
  assert.equal(apiErr.status, expected.status);
  if (expected.param !== undefined) assert.equal(apiErr.param, expected.param);
  if (expected.code !== undefined) assert.equal(apiErr.code, expected.code);
  if (expected.message) assert.match(apiErr.message, expected.message);
  // the envelope has all four keys, and the response its request id
  assert.deepEqual(Object.keys(apiErr.error as object).sort(), ["code", "message", "param", "type"]);
  assert.match(apiErr.requestID ?? "", /^req_/);
  return apiErr;
}

for (const target of testDatabases()) {
  describe(`Files API [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let scratch: string;

    before(async () => {
      ({ db, app } = await startAppStack(target, {
        maxFileBytes: MAX_FILE_BYTES,
        maxLineBytes: MAX_LINE_BYTES,
      }));
      scratch = mkdtempSync(join(tmpdir(), "files-test-"));
    });
    after(async () => {
      await stopStack({ app, db });
      rmSync(scratch, { recursive: true, force: true });
    });

    it("uploads with toFile, returns the File object with integer-second times and validation", async () => {
      const content = chatJsonl(12);
      const before = Math.floor(Date.now() / 1000);
      const file = await app.client.files.create({
        file: await toFile(Buffer.from(content), "train.jsonl"),
        purpose: "fine-tune",
      });
      assert.match(file.id, /^file-[A-Za-z0-9]{24}$/);
      assert.equal(file.object, "file");
      assert.equal(file.bytes, Buffer.byteLength(content));
      assert.equal(file.filename, "train.jsonl");
      assert.equal(file.purpose, "fine-tune");
      assert.equal(file.status, "processed");
      assert.ok(
        Number.isInteger(file.created_at) && file.created_at >= before - 1 && file.created_at <= before + 60,
      );
      assert.equal(file.expires_at, undefined);
      const validation = (file as unknown as { validation: Record<string, unknown> }).validation;
      assert.deepEqual(validation, {
        format: "chat",
        examples: 12,
        valid_examples: 12,
        invalid_examples: 0,
        errors: [],
      });
      assert.match((file as unknown as { _request_id: string })._request_id, /^req_/);
      const ready = await app.client.files.waitForProcessing(file.id, { pollInterval: 10 });
      assert.equal(ready.status, "processed");
    });

    it("uploads a chunked stream (fs.createReadStream) and retrieves it", async () => {
      const path = join(scratch, "streamed.jsonl");
      const content = chatJsonlOfSize(600 * 1024);
      writeFileSync(path, content);
      const file = await app.client.files.create({ file: createReadStream(path), purpose: "fine-tune" });
      assert.equal(file.filename, "streamed.jsonl");
      assert.equal(file.bytes, content.length);
      const again = await app.client.files.retrieve(file.id);
      assert.deepEqual(again, file);
    });

    it("records schema problems of a fine-tune file with line numbers and still stores it", async () => {
      const lines = [
        JSON.stringify({
          messages: [
            { role: "user", content: "hi" },
            { role: "assistant", content: "yo" },
          ],
        }),
        JSON.stringify({ messages: [{ role: "user", content: "no answer" }] }),
        JSON.stringify({ prompt: "p", completion: "c" }),
      ];
      const file = await app.client.files.create({
        file: await toFile(Buffer.from(`${lines.join("\n")}\n`), "mixed.jsonl"),
        purpose: "fine-tune",
      });
      const validation = (
        file as unknown as {
          validation: { format: string; invalid_examples: number; errors: { line: number }[] };
        }
      ).validation;
      assert.equal(validation.format, "mixed");
      assert.equal(validation.invalid_examples, 1);
      assert.equal(validation.errors[0].line, 2);
    });

    it("round-trips content byte for byte, a multi-MB binary file included", async () => {
      const binary = randomBytes(5 * 1024 * 1024 + 77);
      const file = await app.client.files.create({
        file: await toFile(binary, "blob.bin"),
        purpose: "assistants",
      });
      assert.equal(file.bytes, binary.length);
      const response = await app.client.files.content(file.id);
      assert.equal(response.headers.get("content-type"), "application/octet-stream");
      assert.equal(response.headers.get("content-length"), String(binary.length));
      assert.match(response.headers.get("x-request-id") ?? "", /^req_/);
      const downloaded = Buffer.from(await response.arrayBuffer());
      assert.ok(downloaded.equals(binary), "downloaded bytes differ from the upload");

      const text = chatJsonl(3);
      const small = await app.client.files.create({
        file: await toFile(Buffer.from(text), "s.jsonl"),
        purpose: "fine-tune",
      });
      assert.equal(await (await app.client.files.content(small.id)).text(), text);
    });

    it("lists with pagination across pages (after = last id), order and purpose filter", async () => {
      const project = await app.newProject();
      const created: string[] = [];
      for (let i = 0; i < 5; i++) {
        const f = await project.client.files.create({
          file: await toFile(Buffer.from(chatJsonl(1)), `p${i}.jsonl`),
          purpose: i === 4 ? "batch" : "fine-tune",
        });
        created.push(f.id);
      }
      const firstPage = await project.client.files.list({ limit: 2 });
      assert.equal(firstPage.data.length, 2);
      assert.equal(firstPage.has_more, true);
      assert.deepEqual(
        firstPage.data.map((f) => f.id),
        [created[4], created[3]],
      );
      const all: string[] = [];
      for await (const f of project.client.files.list({ limit: 2 })) all.push(f.id);
      assert.deepEqual(all, [...created].reverse());
      const asc: string[] = [];
      for await (const f of project.client.files.list({ limit: 3, order: "asc" })) asc.push(f.id);
      assert.deepEqual(asc, created);
      const fineTune = await project.client.files.list({ purpose: "fine-tune" });
      assert.deepEqual(
        fineTune.data.map((f) => f.id),
        created.slice(0, 4).reverse(),
      );
      assert.equal(fineTune.has_more, false);

      // the raw list shape
      const raw = await fetch(`${app.baseURL}/files?limit=2&order=asc`, {
        headers: { authorization: `Bearer ${project.apiKey}` },
      });
      assert.match(raw.headers.get("content-type") ?? "", /^application\/json/);
      const body = (await raw.json()) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).sort(), ["data", "first_id", "has_more", "last_id", "object"]);
      assert.equal(body.object, "list");
      assert.equal(body.first_id, created[0]);
      assert.equal(body.last_id, created[1]);
    });

    it("deletes a file and its bytes; afterwards it is gone", async () => {
      const file = await app.client.files.create({
        file: await toFile(Buffer.from(chatJsonl(2)), "d.jsonl"),
        purpose: "fine-tune",
      });
      const rowsBefore = await countRows(app);
      const deleted = await app.client.files.delete(file.id);
      assert.deepEqual(deleted, { id: file.id, object: "file", deleted: true });
      const rowsAfter = await countRows(app);
      assert.equal(rowsAfter.files, rowsBefore.files - 1);
      assert.equal(rowsAfter.blobs, rowsBefore.blobs - 1);
      await expectApiError(app.client.files.retrieve(file.id), {
        cls: OpenAI.NotFoundError,
        status: 404,
        param: "file_id",
      });
      await expectApiError(app.client.files.content(file.id), { cls: OpenAI.NotFoundError, status: 404 });
      await expectApiError(app.client.files.delete(file.id), { cls: OpenAI.NotFoundError, status: 404 });
    });

    it("sets expires_at from expires_after and refuses a bad expires_after", async () => {
      const file = await app.client.files.create({
        file: await toFile(Buffer.from(chatJsonl(1)), "e.jsonl"),
        purpose: "fine-tune",
        expires_after: { anchor: "created_at", seconds: 7200 },
      });
      assert.equal(file.expires_at, file.created_at + 7200);
      await expectApiError(
        app.client.files.create({
          file: await toFile(Buffer.from(chatJsonl(1)), "e.jsonl"),
          purpose: "fine-tune",
          expires_after: { anchor: "created_at", seconds: 5 },
        }),
        { cls: OpenAI.BadRequestError, status: 400, param: "expires_after.seconds" },
      );
    });

    describe("bad input: the SDK's error class, with param and message naming the problem", () => {
      let rowsBeforeBadInput: Awaited<ReturnType<typeof countRows>>;
      before(async () => {
        rowsBeforeBadInput = await countRows(app);
      });
      it("missing purpose", async () => {
        await expectApiError(
          app.client.files.create({ file: await toFile(Buffer.from(chatJsonl(1)), "a.jsonl") } as never),
          { cls: OpenAI.BadRequestError, status: 400, param: "purpose", message: /purpose/ },
        );
      });
      it("unknown purpose", async () => {
        await expectApiError(
          app.client.files.create({
            file: await toFile(Buffer.from(chatJsonl(1)), "a.jsonl"),
            purpose: "nonsense" as never,
          }),
          {
            cls: OpenAI.BadRequestError,
            status: 400,
            param: "purpose",
            code: "invalid_value",
            message: /nonsense/,
          },
        );
      });
      it("empty file", async () => {
        await expectApiError(
          app.client.files.create({
            file: await toFile(Buffer.alloc(0), "empty.jsonl"),
            purpose: "fine-tune",
          }),
          { cls: OpenAI.BadRequestError, status: 400, param: "file", code: "empty_file", message: /empty/ },
        );
      });
      it("bytes that are not UTF-8", async () => {
        const bad = Buffer.concat([
          Buffer.from(`${chatJsonl(1)}{"text":"`),
          Buffer.from([0xc3, 0x28]),
          Buffer.from('"}\n'),
        ]);
        await expectApiError(
          app.client.files.create({ file: await toFile(bad, "bad.jsonl"), purpose: "fine-tune" }),
          {
            cls: OpenAI.BadRequestError,
            status: 400,
            param: "file",
            code: "invalid_utf8",
            message: /Line 2\b/,
          },
        );
      });
      it("a line that is not JSON", async () => {
        const bad = `${chatJsonl(2)}{"messages": [oops\n${chatJsonl(1)}`;
        await expectApiError(
          app.client.files.create({
            file: await toFile(Buffer.from(bad), "bad.jsonl"),
            purpose: "fine-tune",
          }),
          {
            cls: OpenAI.BadRequestError,
            status: 400,
            param: "file",
            code: "invalid_json",
            message: /Line 3\b/,
          },
        );
      });
      it("a line over the line-length cap", async () => {
        const long = JSON.stringify({ text: "x".repeat(MAX_LINE_BYTES + 10) });
        await expectApiError(
          app.client.files.create({
            file: await toFile(Buffer.from(`${chatJsonl(1)}${long}\n`), "long.jsonl"),
            purpose: "fine-tune",
          }),
          {
            cls: OpenAI.BadRequestError,
            status: 400,
            param: "file",
            code: "line_too_long",
            message: new RegExp(`Line 2\\b.*${MAX_LINE_BYTES}`),
          },
        );
      });
      it("a file over the size cap gets 413 in the envelope", async () => {
        const path = join(scratch, "big.bin");
        writeFileSync(path, Buffer.alloc(MAX_FILE_BYTES + 1024 * 1024, 0x61));
        const err = await expectApiError(
          app.client.files.create({ file: createReadStream(path), purpose: "assistants" }),
          {
            cls: OpenAI.APIError,
            status: 413,
            param: "file",
            code: "file_too_large",
            message: new RegExp(String(MAX_FILE_BYTES)),
          },
        );
        assert.equal(err.type, "invalid_request_error");
      });
      it("malformed multipart", async () => {
        const body = Buffer.from(
          '--xyz\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n--xyz\r\nContent-Disp',
        );
        await expectApiError(
          app.client.post("/files", {
            body,
            headers: { "content-type": "multipart/form-data; boundary=xyz" },
          }),
          { cls: OpenAI.BadRequestError, status: 400, code: "invalid_multipart", message: /multipart/i },
        );
      });
      it("refused uploads leave no file row and no bytes", async () => {
        assert.deepEqual(await countRows(app), rowsBeforeBadInput);
      });
    });

    describe("wire details", () => {
      it("x-request-id and the JSON envelope on unknown routes and bad query values", async () => {
        const notFound = await fetch(`${app.baseURL}/nowhere`, {
          headers: { authorization: `Bearer ${app.apiKey}` },
        });
        assert.equal(notFound.status, 404);
        assert.match(notFound.headers.get("x-request-id") ?? "", /^req_/);
        assert.match(notFound.headers.get("content-type") ?? "", /^application\/json/);
        const body = (await notFound.json()) as { error: Record<string, unknown> };
        assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);

        await expectApiError(app.client.files.list({ limit: "abc" as never }), {
          cls: OpenAI.BadRequestError,
          status: 400,
          param: "limit",
        });
        await expectApiError(app.client.files.list({ limit: 0 }), {
          cls: OpenAI.BadRequestError,
          status: 400,
          param: "limit",
        });
        await expectApiError(app.client.files.list({ order: "sideways" as never }), {
          cls: OpenAI.BadRequestError,
          status: 400,
          param: "order",
        });
      });
      it("an unknown `after` cursor is a 400 naming it", async () => {
        await expectApiError(app.client.files.list({ after: "file-doesnotexist" }), {
          cls: OpenAI.BadRequestError,
          status: 400,
          param: "after",
        });
      });
    });
  });
}
