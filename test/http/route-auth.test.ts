// Authentication is decided by the matched route: every route needs a key unless its options
// say `config: { public: true }`. A percent-encoded path that the router decodes onto a route
// (`/%761/models` is `/v1/models`) is that route, so it needs a key too.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DEFAULT_CONFIG } from "../../src/config.js";
import { buildApp } from "../../src/http/app.js";
import { openApiDocument } from "../../src/http/openapi-document.js";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import { envelopeOf, rawRequest } from "../support/raw-http.js";
import type { TestApp } from "../support/test-app.js";
import { startAppStack, stopStack } from "../support/test-stack.js";

const METHODS = ["get", "post", "delete", "put", "patch"] as const;
const SQL = /\b(select|insert|update|delete)\b.*\b(from|into|set|where)\b|"[a-z_]+"\."[a-z_]+"|\$\d/i;

/** Every documented operation as [METHOD, concrete path], plus the undocumented routes. */
function operations(): [string, string][] {
  const doc = openApiDocument() as { paths: Record<string, Record<string, unknown>> };
  const out: [string, string][] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS.filter((m) => m in item)) {
      out.push([
        method.toUpperCase(),
        `/v1${path.replace(/\{([^}]+)\}/g, (_, name: string) => `${name}-x1`)}`,
      ]);
    }
  }
  out.push(["GET", "/v1/models/org/name"]);
  return out;
}

const hex = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`;

/** Spellings of `path` that a router decoding percent-escapes reads as the same route. */
export function encodedVariants(path: string): string[] {
  const segments = path.split("/").slice(1);
  const variants = new Set<string>([
    path,
    path.replace(/^\/v1/, "/%761"),
    path.replace(/^\/v1/, "/v%31"),
    path.replace(/^\/v1/, "/%76%31"),
    path.replace(/^\/v1/, "/%56%31"),
    `/${segments.map((s) => s.replace(/^./, (c) => hex(c).toUpperCase())).join("/")}`,
    `/${segments.map((s) => [...s].map(hex).join("")).join("/")}`,
    `/${segments.map((s, i) => (i === segments.length - 1 ? [...s].map(hex).join("") : s)).join("/")}`,
    `/${path.slice(1).replace("/", "%2f")}`,
    `${path}/`,
    `/${path}`,
    `/v1/.${path.slice(3)}`,
    `/v1/x/..${path.slice(3)}`,
    `${path}?x=%00`,
    `${path}#frag`,
  ]);
  return [...variants];
}

for (const target of testDatabases()) {
  describe(`route authentication [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    before(async () => {
      ({ db, app } = await startAppStack(target));
    });
    after(() => stopStack({ app, db }));

    it("every operation, with no key or a bad key and under any encoding of its path, is 401 or 404", async () => {
      const failures: string[] = [];
      let requests = 0;
      for (const [method, path] of operations()) {
        for (const variant of encodedVariants(path)) {
          for (const headers of [
            {},
            { authorization: "Bearer sk-wrong-key-0000" },
            { authorization: "Basic eDp5" },
          ]) {
            const body = method === "POST" ? "{}" : undefined;
            const res = await rawRequest(app.origin, method, variant, {
              headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) },
              body,
            }).catch((err: Error) => ({ status: 0, text: err.message }));
            requests++;
            const what = `${method} ${variant} ${JSON.stringify(headers)} → ${res.status} ${res.text.slice(0, 200)}`;
            if (res.status !== 401 && res.status !== 404) failures.push(what);
            else if (!envelopeOf(res.text)) failures.push(`not in the envelope: ${what}`);
            else if (SQL.test(res.text)) failures.push(`SQL in the body: ${what}`);
          }
        }
      }
      assert.deepEqual(failures, []);
      assert.ok(requests > 300, `only ${requests} requests`);
    });

    it("HEAD on a GET route needs a key too", async () => {
      for (const path of ["/v1/files", "/%761/models", "/v1/fine_tuning/jobs"]) {
        const res = await rawRequest(app.origin, "HEAD", path);
        assert.equal(res.status, 401, path);
      }
    });

    it("the routes marked public answer without a key, under encodings too", async () => {
      for (const path of ["/openapi.json", "/%6fpenapi.json", "/health", "/%68ealth"]) {
        const res = await rawRequest(app.origin, "GET", path);
        assert.equal(res.status, 200, `${path}: ${res.text.slice(0, 200)}`);
      }
    });

    it("an unknown path is 404 in the envelope with or without a key, and says nothing else", async () => {
      for (const headers of [{}, { authorization: `Bearer ${app.apiKey}` }]) {
        const res = await rawRequest(app.origin, "GET", "/v1/nothing-here", { headers });
        assert.equal(res.status, 404);
        const e = envelopeOf(res.text);
        assert.ok(e);
        assert.equal(e.code, "unknown_url");
      }
    });

    it("a route added later needs a key unless it says public, wherever it is mounted", async () => {
      const extra = await buildApp({
        config: { ...DEFAULT_CONFIG, logLevel: "silent" },
        database: db.handle,
        logger: false,
      });
      extra.get("/console/data", async () => ({ secret: true }));
      extra.get("/assets/app.js", { config: { public: true } }, async () => "ok");
      await extra.ready();
      try {
        assert.equal((await extra.inject({ method: "GET", url: "/console/data" })).statusCode, 401);
        assert.equal((await extra.inject({ method: "GET", url: "/%63onsole/data" })).statusCode, 401);
        assert.equal((await extra.inject({ method: "GET", url: "/assets/app.js" })).statusCode, 200);
      } finally {
        await extra.close();
      }
    });

    it("with the key, an encoded path reaches its route as the plain one does", async () => {
      const res = await rawRequest(app.origin, "GET", "/%761/models", {
        headers: { authorization: `Bearer ${app.apiKey}` },
      });
      assert.equal(res.status, 200);
    });
  });
}
