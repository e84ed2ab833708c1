// Every error leaves in OpenAI's envelope, the ones answered before routing included, and an
// internal failure is a 500 with a generic message: a database error during a multipart upload
// is not the caller's "malformed body", and its SQL never reaches the response.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { sql } from "drizzle-orm";
import OpenAI, { toFile } from "openai";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import { chatJsonl } from "../support/jsonl.js";
import { envelopeOf, rawRequest } from "../support/raw-http.js";
import type { TestApp } from "../support/test-app.js";
import { startAppStack, stopStack } from "../support/test-stack.js";

const SQL = /\b(select|insert|update|delete)\b|relation|"blob_chunks"|\$\d/i;

/** Sends bytes as they are (a request Node's parser refuses) and returns the whole answer. */
function rawExchange(origin: string, bytes: string): Promise<string> {
  const url = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.end(bytes));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
    socket.on("error", (err: NodeJS.ErrnoException) =>
      err.code === "ECONNRESET" ? resolve(Buffer.concat(chunks).toString("utf8")) : reject(err),
    );
  });
}

for (const target of testDatabases()) {
  describe(`error envelopes [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    before(async () => {
      ({ db, app } = await startAppStack(target));
    });
    after(() => stopStack({ app, db }));
    const auth = () => ({ authorization: `Bearer ${app.apiKey}` });

    it("a path that is not UTF-8 is 400, an over-long segment 414, oversized headers 431, all in the envelope", async () => {
      const cases: [string, Record<string, string>, number][] = [
        ["/v1/%FF", auth(), 400],
        ["/v1/files/%FF", auth(), 400],
        ["/v1/files/%E0%A4%A", auth(), 400],
        [`/v1/files/${"a".repeat(10_000)}`, auth(), 414],
        ["/v1/files", { ...auth(), "x-big": "a".repeat(20_000) }, 431],
        [
          "/v1/files",
          {
            ...auth(),
            ...Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`x-h${i}`, "a".repeat(60)])),
          },
          431,
        ],
        [`/v1/files?after=${"a".repeat(20_000)}`, auth(), 431],
      ];
      for (const [path, headers, status] of cases) {
        const res = await rawRequest(app.origin, "GET", path, { headers });
        assert.equal(res.status, status, `${path.slice(0, 40)}: ${res.text}`);
        assert.ok(envelopeOf(res.text), `${path.slice(0, 40)}: ${res.text}`);
        assert.equal(res.headers["content-type"]?.toString().split(";")[0], "application/json");
      }
      const health = await fetch(`${app.origin}/health`);
      assert.equal(health.status, 200);
    });

    it("a request line Node cannot parse is 400 in the envelope", async () => {
      const answer = await rawExchange(app.origin, "GET /v1/files HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
      assert.match(answer, /^HTTP\/1\.1 400 /);
      const body = answer.slice(answer.indexOf("\r\n\r\n") + 4);
      assert.ok(envelopeOf(body), answer);
    });

    it("a database error inside a multipart upload is a 500 server_error without SQL, and nothing is left", async () => {
      const counts = async () =>
        (
          (await app.database.db.execute(
            sql`SELECT (SELECT count(*) FROM files)::int AS files, (SELECT count(*) FROM upload_parts)::int AS parts`,
          )) as unknown as { rows: unknown[] }
        ).rows[0];
      const upload = await app.client.uploads.create({
        filename: "a.jsonl",
        purpose: "batch",
        bytes: 10,
        mime_type: "text/plain",
      });
      const before = await counts();
      // a real fault of the database: the table the file bytes go to is gone for a moment
      await app.database.db.execute(sql`ALTER TABLE blob_chunks RENAME TO blob_chunks_away`);
      try {
        for (const attempt of [
          async () =>
            app.client.files.create({
              file: await toFile(Buffer.from(chatJsonl(3)), "t.jsonl"),
              purpose: "fine-tune",
            }),
          async () =>
            app.client.uploads.parts.create(upload.id, { data: await toFile(Buffer.alloc(5, 97), "p") }),
        ]) {
          const err = await attempt().then(
            () => assert.fail("expected a server error"),
            (e: unknown) => e,
          );
          assert.ok(err instanceof OpenAI.InternalServerError, String(err));
          assert.equal(err.status, 500);
          assert.equal(err.type, "server_error");
          assert.doesNotMatch(err.message, SQL);
          assert.doesNotMatch(JSON.stringify(err.error), SQL);
          assert.match(err.requestID ?? "", /^req_/);
        }
      } finally {
        await app.database.db.execute(sql`ALTER TABLE blob_chunks_away RENAME TO blob_chunks`);
      }
      assert.deepEqual(await counts(), before);
      // and the caller's own mistakes in a multipart body are still 400
      const res = await rawRequest(app.origin, "POST", "/v1/files", {
        headers: { ...auth(), "content-type": "multipart/form-data; boundary=xyz" },
        body: '--xyz\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n--xyz\r\nContent-Disp',
      });
      assert.equal(res.status, 400, res.text);
      assert.equal(envelopeOf(res.text)?.code, "invalid_multipart");
    });
  });
}
