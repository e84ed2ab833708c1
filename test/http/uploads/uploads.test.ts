// Uploads API (create → parts → complete | cancel) through the SDK, on every test database.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { eq } from "drizzle-orm";
import OpenAI, { toFile } from "openai";
import { uploads } from "../../../src/store/db/schema.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import { chatJsonl } from "../../support/jsonl.js";
import type { TestApp } from "../../support/test-app.js";
import { startAppStack, stopStack } from "../../support/test-stack.js";

async function rejection(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await p.then(
    () => assert.fail("expected an error"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof OpenAI.APIError, `not an APIError: ${err}`);
  return err;
}

const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");

for (const target of testDatabases()) {
  describe(`Uploads API [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    before(async () => {
      ({ db, app } = await startAppStack(target, { maxUploadPartBytes: 2 * 1024 * 1024 }));
    });
    after(() => stopStack({ app, db }));

    it("create, parts in parallel, complete in part_ids order with md5 → an ordinary File", async () => {
      const pieces = [randomBytes(1024 * 1024 + 5), randomBytes(1500 * 1024), randomBytes(333)];
      const whole = Buffer.concat(pieces);
      const upload = await app.client.uploads.create({
        bytes: whole.length,
        filename: "big.bin",
        mime_type: "application/octet-stream",
        purpose: "assistants",
      });
      assert.match(upload.id, /^upload_/);
      assert.equal(upload.status, "pending");
      assert.equal(upload.expires_at, upload.created_at + 3600);
      assert.equal(upload.file, null);

      // added out of order and at the same time
      const [p2, p0, p1] = await Promise.all([
        app.client.uploads.parts.create(upload.id, { data: await toFile(pieces[2], "p2") }),
        app.client.uploads.parts.create(upload.id, { data: await toFile(pieces[0], "p0") }),
        app.client.uploads.parts.create(upload.id, { data: await toFile(pieces[1], "p1") }),
      ]);
      assert.match(p0.id, /^part_/);
      assert.equal(p0.object, "upload.part");
      assert.equal(p0.upload_id, upload.id);

      const done = await app.client.uploads.complete(upload.id, {
        part_ids: [p0.id, p1.id, p2.id],
        md5: md5(whole),
      });
      assert.equal(done.status, "completed");
      assert.ok(done.file);
      assert.equal(done.file.bytes, whole.length);
      assert.equal(done.file.filename, "big.bin");
      assert.equal(done.file.status, "processed");
      const downloaded = Buffer.from(await (await app.client.files.content(done.file.id)).arrayBuffer());
      assert.ok(downloaded.equals(whole), "content differs from the parts in part_ids order");
      assert.equal((await app.client.files.retrieve(done.file.id)).bytes, whole.length);

      const late = await rejection(
        app.client.uploads.parts.create(upload.id, { data: await toFile(Buffer.from("x"), "x") }),
      );
      assert.ok(late instanceof OpenAI.BadRequestError);
      assert.match(late.message, /completed/);
      assert.ok((await rejection(app.client.uploads.cancel(upload.id))) instanceof OpenAI.BadRequestError);
    });

    it("checks md5 and the byte total at completion", async () => {
      const data = Buffer.from("hello world");
      const upload = await app.client.uploads.create({
        bytes: data.length,
        filename: "h.txt",
        mime_type: "text/plain",
        purpose: "assistants",
      });
      const part = await app.client.uploads.parts.create(upload.id, { data: await toFile(data, "p") });
      const bad = await rejection(
        app.client.uploads.complete(upload.id, { part_ids: [part.id], md5: "0".repeat(32) }),
      );
      assert.ok(bad instanceof OpenAI.BadRequestError);
      assert.equal(bad.param, "md5");

      const short = await app.client.uploads.create({
        bytes: 100,
        filename: "s.txt",
        mime_type: "text/plain",
        purpose: "assistants",
      });
      const sp = await app.client.uploads.parts.create(short.id, { data: await toFile(data, "p") });
      const mismatch = await rejection(app.client.uploads.complete(short.id, { part_ids: [sp.id] }));
      assert.ok(mismatch instanceof OpenAI.BadRequestError);
      assert.equal(mismatch.param, "part_ids");
      assert.match(mismatch.message, /11 bytes.*100/);

      const unknownPart = await rejection(
        app.client.uploads.complete(upload.id, { part_ids: ["part_nope"] }),
      );
      assert.equal(unknownPart.status, 400);
      assert.match(unknownPart.message, /part_nope/);

      // and the right md5 completes it
      const ok = await app.client.uploads.complete(upload.id, { part_ids: [part.id], md5: md5(data) });
      assert.equal(ok.status, "completed");
    });

    it("validates fine-tune content at completion, across part boundaries", async () => {
      const good = Buffer.from(chatJsonl(4));
      const upload = await app.client.uploads.create({
        bytes: good.length,
        filename: "t.jsonl",
        mime_type: "application/jsonl",
        purpose: "fine-tune",
      });
      const cut = 37; // inside the first line
      const a = await app.client.uploads.parts.create(upload.id, {
        data: await toFile(good.subarray(0, cut), "a"),
      });
      const b = await app.client.uploads.parts.create(upload.id, {
        data: await toFile(good.subarray(cut), "b"),
      });
      const done = await app.client.uploads.complete(upload.id, { part_ids: [a.id, b.id] });
      const validation = (done.file as unknown as { validation: { examples: number; format: string } })
        .validation;
      assert.equal(validation.examples, 4);
      assert.equal(validation.format, "chat");

      const bad = Buffer.from(`${chatJsonl(1)}not json\n`);
      const u2 = await app.client.uploads.create({
        bytes: bad.length,
        filename: "b.jsonl",
        mime_type: "application/jsonl",
        purpose: "fine-tune",
      });
      const p = await app.client.uploads.parts.create(u2.id, { data: await toFile(bad, "p") });
      const err = await rejection(app.client.uploads.complete(u2.id, { part_ids: [p.id] }));
      assert.ok(err instanceof OpenAI.BadRequestError);
      assert.equal(err.code, "invalid_json");
      assert.match(err.message, /Line 2\b/);
    });

    it("cancel frees the parts; a part over the cap gets 413", async () => {
      const upload = await app.client.uploads.create({
        bytes: 10,
        filename: "c.txt",
        mime_type: "text/plain",
        purpose: "assistants",
      });
      await app.client.uploads.parts.create(upload.id, {
        data: await toFile(Buffer.from("0123456789"), "p"),
      });
      const cancelled = await app.client.uploads.cancel(upload.id);
      assert.equal(cancelled.status, "cancelled");
      assert.equal(cancelled.file, null);
      const late = await rejection(
        app.client.uploads.parts.create(upload.id, { data: await toFile(Buffer.from("x"), "x") }),
      );
      assert.ok(late instanceof OpenAI.BadRequestError);
      assert.match(late.message, /cancelled/);

      const big = await app.client.uploads.create({
        bytes: 3 * 1024 * 1024,
        filename: "b.bin",
        mime_type: "application/octet-stream",
        purpose: "assistants",
      });
      const tooBig = await rejection(
        app.client.uploads.parts.create(big.id, {
          data: await toFile(Buffer.alloc(2 * 1024 * 1024 + 1), "p"),
        }),
      );
      assert.equal(tooBig.status, 413);
      assert.equal(tooBig.param, "data");
    });

    it("an upload expires an hour after creation: then it takes no parts and cannot complete", async () => {
      const upload = await app.client.uploads.create({
        bytes: 1,
        filename: "e.txt",
        mime_type: "text/plain",
        purpose: "batch",
      });
      const part = await app.client.uploads.parts.create(upload.id, {
        data: await toFile(Buffer.from("e"), "p"),
      });
      await app.database.db
        .update(uploads)
        .set({ createdAt: new Date(Date.now() - 3601_000), expiresAt: new Date(Date.now() - 1000) })
        .where(eq(uploads.id, upload.id));
      const late = await rejection(
        app.client.uploads.parts.create(upload.id, { data: await toFile(Buffer.from("x"), "x") }),
      );
      assert.ok(late instanceof OpenAI.BadRequestError);
      assert.match(late.message, /expired/);
      const done = await rejection(app.client.uploads.complete(upload.id, { part_ids: [part.id] }));
      assert.match(done.message, /expired/);
      const cancelled = await app.client.uploads.cancel(upload.id);
      assert.equal(cancelled.status, "cancelled");
    });

    it("a completed batch upload becomes a file that expires after 30 days", async () => {
      const upload = await app.client.uploads.create({
        bytes: 2,
        filename: "b.jsonl",
        mime_type: "text/plain",
        purpose: "batch",
      });
      const part = await app.client.uploads.parts.create(upload.id, {
        data: await toFile(Buffer.from("{}"), "p"),
      });
      const done = await app.client.uploads.complete(upload.id, { part_ids: [part.id] });
      assert.equal(done.file?.expires_at, (done.file?.created_at ?? 0) + 30 * 24 * 3600);
    });

    it("refuses a bad create body with the parameter named", async () => {
      const err = await rejection(
        app.client.uploads.create({
          bytes: 1,
          filename: "x",
          mime_type: "text/plain",
          purpose: "nope" as never,
        }),
      );
      assert.ok(err instanceof OpenAI.BadRequestError);
      assert.equal(err.param, "purpose");
      const missing = await rejection(
        app.client.uploads.create({ filename: "x", mime_type: "text/plain", purpose: "batch" } as never),
      );
      assert.equal(missing.param, "bytes");
      assert.ok(
        (await rejection(app.client.uploads.cancel("upload_missing"))) instanceof OpenAI.NotFoundError,
      );
    });
  });
}
