// Delivery from the outbox to a real receiver on loopback: retries with backoff until a 2xx
// (same webhook-id, every attempt recorded), delivery by a process started after the writer
// stopped, a claim whose dispatcher died, timeouts, redirects not followed, answers cut to an
// excerpt, the private-address policy at delivery time, and no event for a rolled-back
// transaction. PGlite and Postgres.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { eq, sql } from "drizzle-orm";
import { webhookDeliveries, webhookEvents } from "../../../src/store/db/schema.js";
import { sweepOnce } from "../../../src/store/maintenance.js";
import { claimDueDeliveries } from "../../../src/store/webhooks/delivery-queue.js";
import { enqueueJobWebhookEvent } from "../../../src/store/webhooks/webhook-outbox.js";
import type { RetrySchedule } from "../../../worker/webhooks/retry-schedule.js";
import {
  startWebhookDispatcher,
  type WebhookDispatcher,
} from "../../../worker/webhooks/webhook-dispatcher.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import { tinyModelsDir, trainingLines, uploadTraining, waitForJob } from "../../support/job-fixtures.js";
import { sdkClient, startTestApp, type TestApp } from "../../support/test-app.js";
import { startReceiver, type WebhookReceiver } from "../../support/webhook-receiver.js";

/** The test knob: retries after ~50–100 ms instead of seconds to hours. */
const FAST_RETRY: RetrySchedule = { baseMs: 100, maxDelayMs: 400, maxAgeMs: 3600_000 };

for (const target of testDatabases()) {
  describe(`webhook delivery [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let receiver: WebhookReceiver;
    const dispatchers: WebhookDispatcher[] = [];

    const dispatch = async (
      opts: { allowPrivate?: boolean; timeoutMs?: number; retry?: RetrySchedule } = {},
    ) => {
      const d = await startWebhookDispatcher({
        database: db.handle,
        allowPrivate: opts.allowPrivate ?? true,
        retry: opts.retry ?? FAST_RETRY,
        timeoutMs: opts.timeoutMs,
        pollMs: 100,
      });
      dispatchers.push(d);
      return d;
    };

    before(async () => {
      db = await target.open();
      app = await startTestApp({ database: db.handle, config: { webhookAllowPrivate: true } });
      receiver = await startReceiver();
    });
    after(async () => {
      for (const d of dispatchers.splice(0)) await d.stop();
      await receiver?.close();
      await app?.close();
      await db?.dispose();
    });

    // each test works in a project of its own, so endpoints and deliveries of one never meet another's
    let project: { projectId: string; apiKey: string };
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${app.baseURL}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${project.apiKey}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return (await res.json()) as any;
    };
    const newEndpoint = (url = receiver.url) => call("POST", "/webhook_endpoints", { url });
    const attempts = async (endpointId: string, n: number) => {
      for (let i = 0; i < 100; i++) {
        const log = await call("GET", `/webhook_endpoints/${endpointId}/deliveries?limit=100`);
        if (log.data.length >= n) return (log.data as any[]).reverse();
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`fewer than ${n} attempts recorded`);
    };
    /** a job event as a job transition writes it, for a job id that needs no real job */
    const enqueueJobEvent = (jobId: string, type: "fine_tuning.job.succeeded" | "fine_tuning.job.failed") =>
      db.handle.db.transaction((tx) =>
        enqueueJobWebhookEvent(tx, { id: jobId, projectId: project.projectId }, type),
      );
    const reset = async (respond: WebhookReceiver["respond"] = () => ({ status: 200, body: "ok" })) => {
      for (const d of dispatchers.splice(0)) await d.stop();
      project = await app.newProject();
      receiver.received.length = 0;
      receiver.respond = respond;
    };

    it("a receiver that fails twice, then succeeds, gets the event once successfully, same webhook-id, all attempts logged", async () => {
      await reset((_req, i) => (i < 2 ? { status: 500, body: `boom ${i}` } : { status: 204 }));
      const ep = await newEndpoint();
      await dispatch();
      await enqueueJobEvent("ftjob-retry", "fine_tuning.job.succeeded");
      const got = await receiver.waitFor(3);
      await new Promise((r) => setTimeout(r, 600)); // no fourth attempt comes
      assert.equal(receiver.received.length, 3);
      const ids = new Set(got.map((g) => g.headers["webhook-id"]));
      assert.equal(ids.size, 1, "the same webhook-id on every attempt");
      for (const g of got) {
        const event = (await app.client.webhooks.unwrap(g.body, g.headers, ep.secret)) as any;
        assert.equal(event.type, "fine_tuning.job.succeeded");
        assert.deepEqual(event.data, { id: "ftjob-retry" });
        assert.equal(event.id, g.headers["webhook-id"]);
      }
      assert.equal(new Set(got.map((g) => g.body)).size, 1, "the same body on every attempt");
      assert.ok(got[1].at - got[0].at >= 40 && got[2].at - got[1].at >= 40, "backoff between attempts");

      const log = await attempts(ep.id, 3);
      assert.deepEqual(
        log.map((a) => [a.attempt, a.status, a.response_status_code, a.error, a.response_excerpt]),
        [
          [1, "failed", 500, "HTTP 500", "boom 0"],
          [2, "failed", 500, "HTTP 500", "boom 1"],
          [3, "succeeded", 204, null, ""],
        ],
      );
      assert.ok(log[0].next_attempt_at !== null && log[1].next_attempt_at !== null);
      assert.equal(log[2].next_attempt_at, null);
      assert.equal(new Set(log.map((a) => a.delivery_id)).size, 1);
      const [row] = await db.handle.db
        .select()
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.id, log[0].delivery_id));
      assert.equal(row.status, "delivered");
      assert.equal(row.attempts, 3);
    });

    it("an event written while no process delivers is sent by a process started later", async () => {
      await reset();
      const ep = await newEndpoint();
      // the writer: an api process with no dispatcher cancels a queued job (its transaction
      // writes the outbox row), then stops before anything is delivered
      const tiny = await tinyModelsDir();
      const writer = await startTestApp({
        database: db.handle,
        config: { webhookAllowPrivate: true, modelsDir: tiny.dir },
      });
      const client = sdkClient(writer.baseURL, project.apiKey);
      const training = await uploadTraining(client, trainingLines(12));
      const job = await client.fineTuning.jobs.create({ model: tiny.model, training_file: training });
      await waitForJob(client, job.id, (j) => j.status === "queued");
      assert.equal((await client.fineTuning.jobs.cancel(job.id)).status, "cancelled");
      await writer.close();
      const [event] = await db.handle.db
        .select()
        .from(webhookEvents)
        .where(sql`${webhookEvents.payload}::jsonb -> 'data' ->> 'id' = ${job.id}`);
      assert.equal(event.type, "fine_tuning.job.cancelled");
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(receiver.received.length, 0, "nothing sent while no dispatcher runs");

      await dispatch();
      const [got] = await receiver.waitFor(1);
      const verified = (await app.client.webhooks.unwrap(got.body, got.headers, ep.secret)) as any;
      assert.equal(verified.id, event.id);
      assert.equal(verified.type, "fine_tuning.job.cancelled");
      assert.deepEqual(verified.data, { id: job.id });
    });

    it("a delivery claimed by a dispatcher that died is sent once its lease ends", async () => {
      await reset();
      const ep = await newEndpoint();
      await enqueueJobEvent("ftjob-lease", "fine_tuning.job.failed");
      // a dispatcher claims it with a 1 s lease and dies before sending
      const claimed = (await claimDueDeliveries(db.handle.db, "dead-dispatcher", 1, 100)).filter(
        (c) => c.projectId === project.projectId,
      );
      assert.equal(claimed.length, 1);
      await dispatch();
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(receiver.received.length, 0, "not sent while the lease holds");
      const [got] = await receiver.waitFor(1, 10_000);
      assert.equal(got.headers["webhook-id"], claimed[0].eventId);
      await app.client.webhooks.unwrap(got.body, got.headers, ep.secret);
    });

    it("a slow receiver times out, a redirect is not followed, a long answer is cut to 512 bytes", async () => {
      const target = await startReceiver();
      await reset((_req, i) => {
        if (i === 0) return { status: 200, delayMs: 2000 };
        if (i === 1) return { status: 302, headers: { location: target.url }, body: "moved" };
        return { status: 400, body: "é".repeat(1000) };
      });
      const ep = await newEndpoint();
      await dispatch({ timeoutMs: 300 });
      await enqueueJobEvent("ftjob-slow", "fine_tuning.job.failed");
      await receiver.waitFor(3, 20_000);
      const log = await attempts(ep.id, 3);
      assert.equal(log[0].status, "failed");
      assert.equal(log[0].response_status_code, null);
      assert.match(log[0].error, /timeout after 300 ms/);
      assert.ok(log[0].duration_ms >= 250 && log[0].duration_ms < 1900, `duration ${log[0].duration_ms}`);
      assert.equal(log[1].response_status_code, 302);
      assert.equal(log[1].status, "failed");
      assert.equal(target.received.length, 0, "the redirect target is never called");
      assert.equal(log[2].response_status_code, 400);
      assert.ok(
        Buffer.byteLength(log[2].response_excerpt) <= 512,
        `excerpt of ${Buffer.byteLength(log[2].response_excerpt)} bytes`,
      );
      assert.ok(log[2].response_excerpt.startsWith("éé"));
      await target.close();
    });

    it("a 2xx whose body is still streaming at the timeout counts as delivered", async () => {
      await reset(() => ({ status: 200, body: "accepted, still talking", stallBodyMs: 3000 }));
      const ep = await newEndpoint();
      await dispatch({ timeoutMs: 300 });
      await enqueueJobEvent("ftjob-stall", "fine_tuning.job.succeeded");
      const [attempt] = await attempts(ep.id, 1);
      assert.equal(attempt.status, "succeeded");
      assert.equal(attempt.response_status_code, 200);
      assert.equal(attempt.response_excerpt, "accepted, still talking");
      assert.ok(attempt.duration_ms < 2500, `duration ${attempt.duration_ms}`);
      assert.equal(attempt.next_attempt_at, null);
    });

    it("with WEBHOOK_ALLOW_PRIVATE off, loopback targets are refused when saved and when delivered (after DNS)", async () => {
      await reset();
      const strict = await startTestApp({ database: db.handle, config: { webhookAllowPrivate: false } });
      for (const url of [
        "http://127.0.0.1:9/h",
        "http://localhost/h",
        "http://[::1]/h",
        "http://10.1.2.3/h",
        "http://169.254.169.254/latest",
        "http://[::ffff:192.168.0.1]/",
      ]) {
        const r = await fetch(`${strict.baseURL}/webhook_endpoints`, {
          method: "POST",
          headers: { authorization: `Bearer ${strict.apiKey}`, "content-type": "application/json" },
          body: JSON.stringify({ url }),
        });
        const body = (await r.json()) as any;
        assert.equal(r.status, 400, url);
        assert.equal(body.error.param, "url");
        assert.match(body.error.message, /private/);
      }
      await strict.close();
      // saved while allowed, delivered by a strict dispatcher: a name resolving to loopback is blocked
      const ep = await newEndpoint(receiver.url.replace("127.0.0.1", "localhost"));
      const literal = await newEndpoint();
      await dispatch({
        allowPrivate: false,
        retry: { baseMs: 60_000, maxDelayMs: 60_000, maxAgeMs: 3600_000 },
      });
      await enqueueJobEvent("ftjob-private", "fine_tuning.job.failed");
      const [byName] = await attempts(ep.id, 1);
      const [byAddress] = await attempts(literal.id, 1);
      assert.equal(byName.status, "failed");
      assert.match(byName.error, /blocked: localhost resolves to (127\.0\.0\.1|::1)/);
      assert.match(byAddress.error, /blocked: 127\.0\.0\.1/);
      assert.equal(receiver.received.length, 0);
    });

    it("a transaction that rolls back leaves no event and sends nothing", async () => {
      await reset();
      await newEndpoint();
      await dispatch();
      await assert.rejects(
        db.handle.db.transaction(async (tx) => {
          await enqueueJobWebhookEvent(
            tx,
            { id: "ftjob-rollback", projectId: project.projectId },
            "fine_tuning.job.succeeded",
          );
          throw new Error("the job's final state failed to commit");
        }),
        /failed to commit/,
      );
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(receiver.received.length, 0);
      const rows = await db.handle.db
        .select()
        .from(webhookEvents)
        .where(sql`${webhookEvents.payload}::jsonb -> 'data' ->> 'id' = 'ftjob-rollback'`);
      assert.equal(rows.length, 0);
    });

    it("a delivery still failing at the event's maximum age is given up (failed, no next attempt)", async () => {
      await reset(() => ({ status: 503 }));
      const ep = await newEndpoint();
      await dispatch({ retry: { baseMs: 100, maxDelayMs: 100, maxAgeMs: 400 } });
      await enqueueJobEvent("ftjob-expire", "fine_tuning.job.failed");
      let log: any[] = [];
      for (let i = 0; i < 60; i++) {
        log = await attempts(ep.id, 1);
        if (log.at(-1).next_attempt_at === null) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const last = log.at(-1);
      assert.equal(last.next_attempt_at, null);
      const [row] = await db.handle.db
        .select()
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.id, last.delivery_id));
      assert.equal(row.status, "failed");
      const n = receiver.received.length;
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(receiver.received.length, n, "no attempt after giving up");
    });

    it("events older than 30 days whose deliveries are done are swept, with their attempt log", async () => {
      await reset();
      const ep = await newEndpoint();
      await dispatch();
      await enqueueJobEvent("ftjob-old", "fine_tuning.job.succeeded");
      await receiver.waitFor(1);
      await attempts(ep.id, 1);
      for (const d of dispatchers.splice(0)) await d.stop();
      await enqueueJobEvent("ftjob-old-pending", "fine_tuning.job.succeeded");
      await db.handle.db
        .update(webhookEvents)
        .set({ createdAt: sql`now() - interval '31 days'` })
        .where(eq(webhookEvents.projectId, project.projectId));
      const swept = await sweepOnce(db.handle.db);
      assert.equal(swept.webhookEvents, 1);
      const left = await db.handle.db
        .select()
        .from(webhookEvents)
        .where(eq(webhookEvents.projectId, project.projectId));
      assert.deepEqual(
        left.map((e) => JSON.parse(e.payload).data.id),
        ["ftjob-old-pending"],
      );
      assert.deepEqual((await call("GET", `/webhook_endpoints/${ep.id}/deliveries`)).data, []);
    });
  });
}
