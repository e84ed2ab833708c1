// The OpenAPI document is served, and every operation in it is a route the app serves.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseQueryString } from "../../src/http/query-string.js";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import type { TestApp } from "../support/test-app.js";
import { startAppStack, stopStack } from "../support/test-stack.js";

describe("contract", () => {
  const [pglite] = testDatabases();
  let db: TestDatabase;
  let app: TestApp;
  before(async () => {
    ({ db, app } = await startAppStack(pglite));
  });
  after(() => stopStack({ app, db }));

  it("serves GET /openapi.json without a key, and each documented operation has a route", async () => {
    const res = await fetch(`${app.origin}/openapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("x-request-id") ?? "", /^req_/);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    assert.match(doc.openapi, /^3\.1/);
    const methods = ["get", "post", "delete", "put", "patch"];
    let operations = 0;
    const missing: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of methods.filter((m) => m in item)) {
        const url = `/v1${path.replace(/\{([^}]+)\}/g, ":$1")}`;
        if (!app.app.hasRoute({ method: method.toUpperCase() as "GET", url }))
          missing.push(`${method.toUpperCase()} ${url}`);
        operations++;
      }
    }
    assert.deepEqual(missing, [], "documented in openapi/openapi.yaml but not served");
    assert.ok(operations >= 11);
  });

  it("parses qs-style queries: metadata[k]=v nests, limit stays a string for ajv to coerce", () => {
    assert.deepEqual(parseQueryString("metadata%5Bteam%5D=ml&metadata%5Benv%5D=prod&limit=2"), {
      metadata: { team: "ml", env: "prod" },
      limit: "2",
    });
  });
});
