// /v1/webhook_endpoints through plain HTTP: create (secret shown once), list, retrieve, update,
// rotate, delete, the test event (delivered to a real receiver and verified with the official
// SDK's webhooks.unwrap), the URL policy, tenancy (another project's endpoint and its delivery
// log are a 404), and WEBHOOK_URLS provisioning. PGlite and Postgres.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { eq, sql } from "drizzle-orm";
import { loadConfig } from "../../../src/config.js";
import { createApiKey } from "../../../src/store/auth/api-keys.js";
import { webhookEndpoints } from "../../../src/store/db/schema.js";
import { provisionEnvEndpoints } from "../../../src/store/webhooks/endpoint-repository.js";
import {
  startWebhookDispatcher,
  type WebhookDispatcher,
} from "../../../worker/webhooks/webhook-dispatcher.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import { sdkClient, startTestApp, type TestApp } from "../../support/test-app.js";
import { startReceiver, type WebhookReceiver } from "../../support/webhook-receiver.js";

const SECRET_A = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
const SECRET_B = `whsec_${Buffer.alloc(32, 9).toString("base64")}`;

for (const target of testDatabases()) {
  describe(`webhook endpoints API [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let receiver: WebhookReceiver;
    let dispatcher: WebhookDispatcher;

    before(async () => {
      db = await target.open();
      app = await startTestApp({ database: db.handle, config: { webhookAllowPrivate: true } });
      receiver = await startReceiver();
      dispatcher = await startWebhookDispatcher({ database: db.handle, allowPrivate: true, pollMs: 100 });
    });
    after(async () => {
      await dispatcher?.stop();
      await receiver?.close();
      await app?.close();
      await db?.dispose();
    });

    const call = async (method: string, path: string, body?: unknown, key = app.apiKey) => {
      const res = await fetch(`${app.baseURL}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, json: (await res.json()) as any };
    };

    it("create answers the endpoint with its whsec_ secret; retrieve and list never show it", async () => {
      const created = await call("POST", "/webhook_endpoints", { url: receiver.url, description: "ci" });
      assert.equal(created.status, 200, JSON.stringify(created.json));
      const ep = created.json;
      assert.match(ep.id, /^we_[A-Za-z0-9]{24}$/);
      assert.equal(ep.object, "webhook_endpoint");
      assert.equal(ep.url, receiver.url);
      assert.equal(ep.description, "ci");
      assert.equal(ep.source, "api");
      assert.deepEqual(ep.events, [
        "fine_tuning.job.succeeded",
        "fine_tuning.job.failed",
        "fine_tuning.job.cancelled",
        "fine_tuning.job.running",
        "fine_tuning.job.checkpoint.created",
      ]);
      assert.match(ep.secret, /^whsec_[A-Za-z0-9+/]+=*$/);
      assert.equal(Buffer.from(ep.secret.slice(6), "base64").length, 32);
      assert.ok(Math.abs(ep.created_at - Date.now() / 1000) < 60);

      const got = await call("GET", `/webhook_endpoints/${ep.id}`);
      assert.equal(got.status, 200);
      const { secret: _secret, ...withoutSecret } = ep;
      assert.deepEqual(got.json, withoutSecret);
      const listed = await call("GET", "/webhook_endpoints");
      assert.equal(listed.json.object, "list");
      assert.ok(listed.json.data.some((e: any) => e.id === ep.id));
      assert.ok(listed.json.data.every((e: any) => !("secret" in e)));
      await call("DELETE", `/webhook_endpoints/${ep.id}`);
    });

    it("list pages newest first with after/limit", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++)
        ids.push((await call("POST", "/webhook_endpoints", { url: `${receiver.url}?n=${i}` })).json.id);
      const first = await call("GET", "/webhook_endpoints?limit=2");
      assert.equal(first.json.data.length, 2);
      assert.equal(first.json.has_more, true);
      assert.equal(first.json.first_id, first.json.data[0].id);
      const second = await call("GET", `/webhook_endpoints?limit=2&after=${first.json.last_id}`);
      const seen = [...first.json.data, ...second.json.data].map((e: any) => e.id);
      for (const id of ids) assert.ok(seen.includes(id));
      assert.equal(new Set(seen).size, seen.length, "no endpoint on two pages");
      for (const id of ids) assert.equal((await call("DELETE", `/webhook_endpoints/${id}`)).status, 200);
    });

    it("update changes only the fields given; delete removes it (then 404)", async () => {
      const ep = (
        await call("POST", "/webhook_endpoints", { url: receiver.url, events: ["fine_tuning.job.failed"] })
      ).json;
      assert.deepEqual(ep.events, ["fine_tuning.job.failed"]);
      const updated = await call("POST", `/webhook_endpoints/${ep.id}`, {
        events: ["fine_tuning.job.succeeded", "fine_tuning.job.cancelled"],
      });
      assert.equal(updated.status, 200);
      assert.deepEqual(updated.json.events, ["fine_tuning.job.succeeded", "fine_tuning.job.cancelled"]);
      assert.equal(updated.json.url, receiver.url);
      assert.equal(updated.json.secret, undefined);
      const described = await call("POST", `/webhook_endpoints/${ep.id}`, {
        description: "renamed",
        url: `${receiver.url}?v=2`,
      });
      assert.equal(described.json.description, "renamed");
      assert.equal(described.json.url, `${receiver.url}?v=2`);
      assert.deepEqual(described.json.events, ["fine_tuning.job.succeeded", "fine_tuning.job.cancelled"]);
      const deleted = await call("DELETE", `/webhook_endpoints/${ep.id}`);
      assert.deepEqual(deleted.json, { id: ep.id, object: "webhook_endpoint.deleted", deleted: true });
      const gone = await call("GET", `/webhook_endpoints/${ep.id}`);
      assert.equal(gone.status, 404);
      assert.equal(gone.json.error.param, "webhook_endpoint_id");
      assert.equal((await call("DELETE", `/webhook_endpoints/${ep.id}`)).status, 404);
    });

    it("bad bodies are 400s naming the param", async () => {
      const cases: [unknown, string][] = [
        [{}, "url"],
        [{ url: "not a url" }, "url"],
        [{ url: "ftp://example.com/x" }, "url"],
        [{ url: "https://user:pw@example.com/x" }, "url"],
        [{ url: receiver.url, events: ["fine_tuning.job.exploded"] }, "events.0"],
        [{ url: receiver.url, events: [] }, "events"],
      ];
      for (const [body, param] of cases) {
        const r = await call("POST", "/webhook_endpoints", body);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal(r.json.error.param, param, `${JSON.stringify(body)}: ${r.json.error.message}`);
        assert.equal(r.json.error.type, "invalid_request_error");
      }
    });

    it("the test event reaches the receiver, verifies with the SDK, and is in the delivery log", async () => {
      const ep = (await call("POST", "/webhook_endpoints", { url: receiver.url })).json;
      const before = receiver.received.length;
      const sent = await call("POST", `/webhook_endpoints/${ep.id}/test`);
      assert.equal(sent.status, 200);
      assert.match(sent.json.id, /^evt_/);
      assert.equal(sent.json.type, "webhook_endpoint.test");
      assert.deepEqual(sent.json.data, { id: ep.id });
      const [got] = (await receiver.waitFor(before + 1)).slice(before);
      const event = await app.client.webhooks.unwrap(got.body, got.headers, ep.secret);
      assert.deepEqual(event, sent.json);
      assert.equal(got.headers["webhook-id"], sent.json.id);
      assert.equal(got.headers["content-type"], "application/json");
      // a wrong secret (another endpoint's) fails verification
      await assert.rejects(
        app.client.webhooks.unwrap(got.body, got.headers, SECRET_A),
        /signature does not match/,
      );

      let log: any;
      for (let i = 0; i < 50; i++) {
        log = (await call("GET", `/webhook_endpoints/${ep.id}/deliveries`)).json;
        if (log.data.length > 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(log.object, "list");
      assert.equal(log.data.length, 1);
      const attempt = log.data[0];
      assert.match(attempt.id, /^whatt_/);
      assert.equal(attempt.object, "webhook_endpoint.delivery_attempt");
      assert.equal(attempt.event_id, sent.json.id);
      assert.equal(attempt.event_type, "webhook_endpoint.test");
      assert.equal(attempt.attempt, 1);
      assert.equal(attempt.status, "succeeded");
      assert.equal(attempt.response_status_code, 200);
      assert.equal(attempt.error, null);
      assert.equal(attempt.response_excerpt, "ok");
      assert.equal(attempt.next_attempt_at, null);
      assert.ok(attempt.duration_ms >= 0);
      await call("DELETE", `/webhook_endpoints/${ep.id}`);
    });

    it("rotate_secret answers a new secret; the old one keeps signing beside it for a day, then stops", async () => {
      const ep = (await call("POST", "/webhook_endpoints", { url: receiver.url })).json;
      const rotated = await call("POST", `/webhook_endpoints/${ep.id}/rotate_secret`);
      assert.equal(rotated.status, 200);
      assert.match(rotated.json.secret, /^whsec_/);
      assert.notEqual(rotated.json.secret, ep.secret);
      assert.equal(rotated.json.id, ep.id);
      const testDelivery = async () => {
        const before = receiver.received.length;
        await call("POST", `/webhook_endpoints/${ep.id}/test`);
        return (await receiver.waitFor(before + 1))[before];
      };
      const during = await testDelivery();
      assert.equal(during.headers["webhook-signature"].split(" ").length, 2);
      // a receiver still on the old secret and one already on the new both verify
      for (const secret of [rotated.json.secret, ep.secret]) {
        const event = (await app.client.webhooks.unwrap(during.body, during.headers, secret)) as {
          type: string;
        };
        assert.equal(event.type, "webhook_endpoint.test");
      }
      // once the grace period is over, only the new secret signs
      await db.handle.db
        .update(webhookEndpoints)
        .set({ previousSecretExpiresAt: sql`now() - interval '1 second'` })
        .where(eq(webhookEndpoints.id, ep.id));
      const later = await testDelivery();
      assert.equal(later.headers["webhook-signature"].split(" ").length, 1);
      await app.client.webhooks.unwrap(later.body, later.headers, rotated.json.secret);
      await assert.rejects(
        app.client.webhooks.unwrap(later.body, later.headers, ep.secret),
        /does not match/,
      );
      await call("DELETE", `/webhook_endpoints/${ep.id}`);
    });

    it("another project's endpoint answers exactly like a missing one, on every route", async () => {
      const ep = (await call("POST", "/webhook_endpoints", { url: receiver.url })).json;
      await call("POST", `/webhook_endpoints/${ep.id}/test`);
      await receiver.waitFor(1);
      const other = await app.newProject();
      const routes: [string, string, unknown?][] = [
        ["GET", ""],
        ["POST", "", { description: "mine now" }],
        ["DELETE", ""],
        ["POST", "/rotate_secret"],
        ["POST", "/test"],
        ["GET", "/deliveries"],
      ];
      for (const [method, suffix, body] of routes) {
        const foreign = await call(method, `/webhook_endpoints/${ep.id}${suffix}`, body, other.apiKey);
        const missing = await call(
          method,
          `/webhook_endpoints/we_${"x".repeat(24)}${suffix}`,
          body,
          other.apiKey,
        );
        assert.equal(foreign.status, 404, `${method} ${suffix}`);
        assert.deepEqual(foreign.json.error, {
          ...missing.json.error,
          message: missing.json.error.message.replace(`we_${"x".repeat(24)}`, ep.id),
        });
      }
      const list = await call("GET", "/webhook_endpoints", undefined, other.apiKey);
      assert.deepEqual(list.json.data, []);
      // still there and unchanged for its owner
      const mine = await call("GET", `/webhook_endpoints/${ep.id}`);
      assert.equal(mine.json.description, null);
      await call("DELETE", `/webhook_endpoints/${ep.id}`);
    });

    it("WEBHOOK_URLS endpoints are provisioned in project default and reconciled", async () => {
      const config = loadConfig({
        WEBHOOK_URLS: `${receiver.url}?a, ${receiver.url}?b`,
        WEBHOOK_SECRET: `${SECRET_A},${SECRET_B}`,
        WEBHOOK_ALLOW_PRIVATE: "true",
      });
      assert.deepEqual(config.webhookUrls, [
        { url: `${receiver.url}?a`, secret: SECRET_A },
        { url: `${receiver.url}?b`, secret: SECRET_B },
      ]);
      await provisionEnvEndpoints(db.handle.db, config.webhookUrls);
      const key = await createApiKey(db.handle.db, { projectName: "default", source: "cli" });
      const client = sdkClient(app.baseURL, key.key);
      const list = async () =>
        ((await call("GET", "/webhook_endpoints", undefined, key.key)).json.data as any[]).filter(
          (e) => e.source === "env",
        );
      const first = await list();
      assert.deepEqual(first.map((e) => e.url).sort(), [`${receiver.url}?a`, `${receiver.url}?b`]);
      // a test event to the `a` endpoint verifies with WEBHOOK_SECRET's first secret
      const a = first.find((e) => e.url.endsWith("?a"));
      const before = receiver.received.length;
      await call("POST", `/webhook_endpoints/${a.id}/test`, undefined, key.key);
      const [got] = (await receiver.waitFor(before + 1)).slice(before);
      assert.equal(
        ((await client.webhooks.unwrap(got.body, got.headers, SECRET_A)) as { data: { id: string } }).data.id,
        a.id,
      );

      // a restart with one URL keeps that endpoint (same id) and removes the other
      await provisionEnvEndpoints(db.handle.db, [{ url: `${receiver.url}?a`, secret: SECRET_B }]);
      const second = await list();
      assert.deepEqual(
        second.map((e) => e.id),
        [a.id],
      );
      await provisionEnvEndpoints(db.handle.db, []);
      assert.deepEqual(await list(), []);

      assert.throws(() => loadConfig({ WEBHOOK_URLS: "https://example.com/h" }), /WEBHOOK_SECRET/);
      assert.throws(
        () => loadConfig({ WEBHOOK_URLS: "https://example.com/h", WEBHOOK_SECRET: "plain" }),
        /whsec_/,
      );
      assert.throws(
        () => loadConfig({ WEBHOOK_URLS: "http://127.0.0.1:9/h", WEBHOOK_SECRET: SECRET_A }),
        /WEBHOOK_URLS.*private/,
      );
      assert.throws(() => loadConfig({ WEBHOOK_ALLOW_PRIVATE: "maybe" }), /WEBHOOK_ALLOW_PRIVATE/);
    });
  });
}
