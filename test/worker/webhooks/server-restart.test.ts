// Real server processes (`src/server.ts`) on a Postgres server (TEST_DATABASE_URL), configured
// through WEBHOOK_URLS / WEBHOOK_SECRET: the first process cancels a job, makes one failed
// attempt (the receiver answers 503) and is killed with SIGKILL before its retry; a second
// process started on the same database sends the retry, with the same webhook-id, and the
// official SDK verifies it.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { eq } from "drizzle-orm";
import pg from "pg";
import { type DatabaseHandle, openDatabase } from "../../../src/store/db/client.js";
import { webhookDeliveries, webhookDeliveryAttempts } from "../../../src/store/db/schema.js";
import { tinyModelsDir, trainingLines, uploadTraining, waitForJob } from "../../support/job-fixtures.js";
import { sdkClient } from "../../support/test-app.js";
import { startReceiver, type WebhookReceiver } from "../../support/webhook-receiver.js";

const serverUrl = process.env.TEST_DATABASE_URL;
const API_KEY = "sk-webhook-restart-test-key";
const SECRET = `whsec_${randomBytes(32).toString("base64")}`;

async function admin(url: string, text: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

describe("webhooks across a killed server process [postgres]", {
  skip: serverUrl ? false : "TEST_DATABASE_URL not set",
}, () => {
  const name = `th_webhooks_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  let url: string;
  let handle: DatabaseHandle;
  let receiver: WebhookReceiver;
  let scratch: string;
  const children: ChildProcess[] = [];
  const output: string[] = [];

  before(async () => {
    await admin(serverUrl!, `CREATE DATABASE ${name}`);
    const u = new URL(serverUrl!);
    u.pathname = `/${name}`;
    url = u.toString();
    handle = await openDatabase({ kind: "postgres", url, poolSize: 2 });
    receiver = await startReceiver();
    scratch = mkdtempSync(join(tmpdir(), "webhooks-restart-"));
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await receiver?.close();
    await handle?.close();
    await admin(serverUrl!, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    rmSync(scratch, { recursive: true, force: true });
  });

  /** starts `tsx src/server.ts`; resolves to its base URL once it listens */
  const startServer = async (modelsDir: string): Promise<{ child: ChildProcess; baseURL: string }> => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], {
      env: {
        ...process.env,
        DATABASE_URL: url,
        PORT: "0",
        HOST: "127.0.0.1",
        DATA_DIR: scratch,
        MODELS_DIR: modelsDir,
        API_KEYS: API_KEY,
        WEBHOOK_URLS: receiver.url,
        WEBHOOK_SECRET: SECRET,
        WEBHOOK_ALLOW_PRIVATE: "true",
        LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let text = "";
    const baseURL = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${text}`)), 60_000);
      const onData = (d: Buffer) => {
        text += String(d);
        output.push(String(d));
        const m = /Base URL:\s+(\S+)/.exec(text);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("exit", (code) => reject(new Error(`server exited (${code}): ${text}`)));
    });
    return { child, baseURL };
  };

  it("a retry the killed process owed is sent by the next one, same webhook-id, verified by the SDK", async () => {
    const { dir, model } = await tinyModelsDir();
    receiver.respond = (_req, i) => (i === 0 ? { status: 503, body: "not yet" } : { status: 200 });
    const a = await startServer(dir);
    const client = sdkClient(a.baseURL, API_KEY);
    const training = await uploadTraining(client, trainingLines(12));
    const job = await client.fineTuning.jobs.create({ model, training_file: training });
    await waitForJob(client, job.id, (j) => j.status === "queued");
    await client.fineTuning.jobs.cancel(job.id);
    const [first] = await receiver.waitFor(1);
    for (let i = 0; i < 100; i++) {
      if ((await handle.db.select().from(webhookDeliveryAttempts)).length === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    a.child.kill("SIGKILL");
    await new Promise((r) => a.child.once("exit", r));
    const [pending] = await handle.db.select().from(webhookDeliveries);
    assert.equal(pending.status, "pending", "the killed process left its retry pending");
    assert.equal(pending.attempts, 1);

    const b = await startServer(dir);
    const [, second] = await receiver.waitFor(2, 30_000);
    assert.equal(second.headers["webhook-id"], first.headers["webhook-id"]);
    assert.equal(second.body, first.body);
    const event = (await sdkClient(b.baseURL, API_KEY).webhooks.unwrap(
      second.body,
      second.headers,
      SECRET,
    )) as {
      type: string;
      data: { id: string };
    };
    assert.equal(event.type, "fine_tuning.job.cancelled");
    assert.deepEqual(event.data, { id: job.id });
    for (let i = 0; i < 100; i++) {
      const [row] = await handle.db
        .select()
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.id, pending.id));
      if (row.status === "delivered") break;
      assert.ok(i < 99, "delivery marked delivered");
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(receiver.received.length, 2, "delivered once after the failure, not again");
    b.child.kill("SIGTERM");
    await new Promise((r) => b.child.once("exit", r));
  });
});
