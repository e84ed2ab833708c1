// Downloads name the file with RFC 6266/5987 headers whatever the name holds (any script,
// emoji, Latin-1, control characters), the file object keeps the name exactly, and downloads
// are never content-sniffed.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { toFile } from "openai";
import { attachmentDisposition } from "../../src/http/content-disposition.js";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import { chatJsonl } from "../support/jsonl.js";
import type { TestApp } from "../support/test-app.js";
import { startAppStack, stopStack } from "../support/test-stack.js";

/** The name a client takes from Content-Disposition: filename* when present (RFC 6266 §4.3). */
function filenameOf(header: string): string {
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star) return decodeURIComponent(star[1]);
  const plain = /filename="([^"]*)"/.exec(header);
  assert.ok(plain, `no filename in ${header}`);
  return plain[1];
}

const NAMES = [
  "日本語€.jsonl",
  "😀.jsonl",
  "résumé.jsonl",
  "tab\there\x01\x7f.jsonl",
  'quote"mark.jsonl',
  "plain.jsonl",
];

describe("attachmentDisposition", () => {
  for (const name of NAMES) {
    it(`is a valid header for ${JSON.stringify(name)} and gives the name back`, () => {
      const header = attachmentDisposition(name);
      assert.match(header, /^[\x20-\x7e]+$/, "printable ASCII only");
      assert.equal(filenameOf(header), name);
      const fallback = /filename="([^"]*)"/.exec(header)?.[1] ?? "";
      assert.match(fallback, /^[\x20-\x21\x23-\x5b\x5d-\x7e]+$/);
    });
  }
  it("keeps a plain ASCII name as the only filename", () => {
    assert.equal(attachmentDisposition("train.jsonl"), 'attachment; filename="train.jsonl"');
  });
});

for (const target of testDatabases()) {
  describe(`download headers [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    before(async () => {
      ({ db, app } = await startAppStack(target));
    });
    after(() => stopStack({ app, db }));

    // (a `"` is sent as %22 by FormData, so that one is checked by the unit tests above only)
    for (const name of NAMES.filter((n) => !n.includes('"'))) {
      it(`uploads and downloads ${JSON.stringify(name)} through the SDK`, async () => {
        const content = chatJsonl(3);
        const file = await app.client.files.create({
          file: await toFile(Buffer.from(content), name),
          purpose: "fine-tune",
        });
        assert.equal(file.filename, name);
        assert.equal((await app.client.files.retrieve(file.id)).filename, name);
        const listed = await app.client.files.list();
        assert.equal(listed.data.find((f) => f.id === file.id)?.filename, name);
        const res = await app.client.files.content(file.id);
        assert.equal(res.status, 200);
        assert.equal(await res.text(), content, "the whole body arrives");
        assert.equal(filenameOf(res.headers.get("content-disposition") ?? ""), name);
        assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      });
    }

    it("every response says nosniff, errors included", async () => {
      for (const path of ["/health", "/v1/files", "/v1/nothing"]) {
        const res = await fetch(`${app.origin}${path}`);
        assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
      }
    });
  });
}

describe("attachmentDisposition with a backslash", () => {
  it("escapes it in the fallback and keeps it in filename*", () => {
    const header = attachmentDisposition("back\\slash.jsonl");
    assert.equal(filenameOf(header), "back\\slash.jsonl");
    assert.match(header, /filename="back_slash.jsonl"/);
  });
});
