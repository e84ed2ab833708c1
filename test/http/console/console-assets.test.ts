// The console's files as the API serves them, without a browser: the page at / with its CSP,
// every module the page can import (the import map's libraries and each relative import of
// console/), and nothing outside console/ or the listed library files.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, posix, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { CONSOLE_DIR } from "../../../src/http/console/console.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import { startTestApp, type TestApp } from "../../support/test-app.js";

function consoleFiles(dir = CONSOLE_DIR): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory()
      ? consoleFiles(path)
      : [relative(CONSOLE_DIR, path).split("\\").join("/")];
  });
}

describe("console assets [pglite]", () => {
  let db: TestDatabase;
  let app: TestApp;
  before(async () => {
    db = await testDatabases()[0].open();
    app = await startTestApp({ database: db.handle });
  });
  after(async () => {
    await app?.close();
    await db?.dispose();
  });

  it("serves the page at / without a key, with a CSP that allows only its import map inline", async () => {
    const response = await fetch(`${app.origin}/`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type")!, /^text\/html/);
    const html = await response.text();
    const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)![1];
    const csp = response.headers.get("content-security-policy")!;
    assert.match(csp, /default-src 'self'/);
    const hash = createHash("sha256").update(importMap).digest("base64");
    assert.ok(csp.includes(`script-src 'self' 'sha256-${hash}'`), csp);
    assert.ok(!/script-src[^;]*unsafe-inline/.test(csp));
  });

  it("serves every library of the import map and every module the console imports", async () => {
    const html = await (await fetch(`${app.origin}/`)).text();
    const imports = JSON.parse(/<script type="importmap">([\s\S]*?)<\/script>/.exec(html)![1])
      .imports as Record<string, string>;
    const urls = new Set<string>([
      ...Object.values(imports),
      "/console/vendor/uplot.css",
      "/console/styles.css",
      "/console/app.js",
    ]);
    for (const file of consoleFiles().filter((f) => f.endsWith(".js"))) {
      urls.add(`/console/${file}`);
      const source = readFileSync(join(CONSOLE_DIR, file), "utf8");
      for (const m of source.matchAll(/from "(\.[^"]+)"/g))
        urls.add(`/console/${posix.join(posix.dirname(file), m[1])}`);
      for (const m of source.matchAll(/from "([^."][^"]*)"/g))
        assert.ok(imports[m[1]], `${file} imports '${m[1]}', which the import map lacks`);
    }
    for (const url of urls) {
      const response = await fetch(`${app.origin}${url}`);
      assert.equal(response.status, 200, url);
      const type = response.headers.get("content-type")!;
      assert.match(type, url.endsWith(".css") ? /^text\/css/ : /^text\/javascript/, url);
      await response.arrayBuffer();
    }
  });

  it("serves nothing outside console/ and the listed library files", async () => {
    for (const path of [
      "/console/..%2Fpackage.json",
      "/console/%2e%2e/package.json",
      "/console/vendor/..%2F..%2Fpackage.json",
      "/console/vendor/preact.js",
      "/console/.hidden.js",
      "/console/missing.js",
      "/console/index.txt",
    ]) {
      const response = await fetch(`${app.origin}${path}`);
      assert.equal(response.status, 404, path);
      const body = (await response.json()) as { error: { message: string } };
      assert.ok(body.error.message, path);
    }
  });

  it("leaves the API behind its key", async () => {
    assert.equal((await fetch(`${app.origin}/v1/models`)).status, 401);
  });
});
