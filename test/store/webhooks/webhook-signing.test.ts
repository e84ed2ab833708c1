// The pure parts of webhooks: signatures as the official SDK verifies them (and refuses when
// anything differs), the URL policy's address ranges, and the retry schedule.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import OpenAI from "openai";
import {
  newWebhookSecret,
  signWebhook,
  webhookSecretProblem,
} from "../../../src/store/webhooks/webhook-signature.js";
import { isNonPublicAddress, webhookUrlProblem } from "../../../src/store/webhooks/webhook-url-policy.js";
import { DEFAULT_RETRY_SCHEDULE, retryDelayMs } from "../../../worker/webhooks/retry-schedule.js";

const client = new OpenAI({ apiKey: "unused", baseURL: "http://127.0.0.1:9" });
const now = () => Math.floor(Date.now() / 1000);

describe("webhook signatures", () => {
  const secret = newWebhookSecret();
  const body = JSON.stringify({
    id: "evt_1",
    object: "event",
    type: "fine_tuning.job.succeeded",
    created_at: now(),
    data: { id: "ftjob-1" },
  });

  it("new secrets are whsec_ + base64 of 32 random bytes", () => {
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(newWebhookSecret(), secret);
    assert.equal(webhookSecretProblem(secret), null);
    assert.match(webhookSecretProblem("secret")!, /whsec_/);
    assert.match(webhookSecretProblem("whsec_AAAA")!, /24 to 64 bytes/);
    assert.match(webhookSecretProblem("whsec_not base64!")!, /base64/);
  });

  it("the SDK's webhooks.unwrap accepts our signature", async () => {
    const headers = signWebhook(secret, "evt_1", now(), body);
    assert.match(headers["webhook-signature"], /^v1,[A-Za-z0-9+/]{43}=$/);
    assert.deepEqual(await client.webhooks.unwrap(body, headers, secret), JSON.parse(body));
  });

  it("with two secrets (a rotation), either one verifies", async () => {
    const other = newWebhookSecret();
    const headers = signWebhook([secret, other], "evt_1", now(), body);
    assert.equal(headers["webhook-signature"].split(" ").length, 2);
    await client.webhooks.unwrap(body, headers, secret);
    await client.webhooks.unwrap(body, headers, other);
    await assert.rejects(client.webhooks.unwrap(body, headers, newWebhookSecret()), /does not match/);
  });

  it("and refuses it for another secret, another body, another id, or an old timestamp", async () => {
    const headers = signWebhook(secret, "evt_1", now(), body);
    await assert.rejects(client.webhooks.unwrap(body, headers, newWebhookSecret()), /does not match/);
    await assert.rejects(
      client.webhooks.unwrap(body.replace("ftjob-1", "ftjob-2"), headers, secret),
      /does not match/,
    );
    await assert.rejects(
      client.webhooks.unwrap(body, { ...headers, "webhook-id": "evt_2" }, secret),
      /does not match/,
    );
    const old = signWebhook(secret, "evt_1", now() - 600, body);
    await assert.rejects(client.webhooks.unwrap(body, old, secret), /too old/);
  });
});

describe("webhook URL policy", () => {
  it("non-public addresses", () => {
    for (const a of [
      "127.0.0.1",
      "10.0.0.1",
      "172.16.5.4",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "::1",
      "::",
      "fd12::1",
      "fe80::1",
      "::ffff:127.0.0.1",
      "64:ff9b::a00:1",
      "224.0.0.1",
      "not-an-ip",
    ]) {
      assert.equal(isNonPublicAddress(a), true, a);
    }
    for (const a of ["8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]) {
      assert.equal(isNonPublicAddress(a), false, a);
    }
  });

  it("URLs: http(s) only, no credentials, private targets refused unless allowed", () => {
    assert.equal(webhookUrlProblem("https://hooks.example.com/ft", false), null);
    assert.equal(webhookUrlProblem("http://127.0.0.1:8080/h", true), null);
    for (const url of [
      "http://127.0.0.1:8080/h",
      "http://LOCALHOST/h",
      "http://a.localhost/h",
      "http://[::1]/h",
      "http://0x7f.1/h",
      "http://2130706433/h",
    ]) {
      assert.match(webhookUrlProblem(url, false)!, /private/, url);
    }
    assert.match(webhookUrlProblem("file:///etc/passwd", true)!, /http or https/);
    assert.match(webhookUrlProblem("https://u:p@example.com/", true)!, /credentials/);
    assert.match(webhookUrlProblem("/relative", true)!, /absolute/);
  });
});

describe("retry schedule", () => {
  it("doubles from 5 s with jitter in [half, full], capped at 6 h; ~20 tries fit in 72 h", () => {
    assert.equal(
      retryDelayMs(DEFAULT_RETRY_SCHEDULE, 1, () => 0),
      2500,
    );
    assert.equal(
      retryDelayMs(DEFAULT_RETRY_SCHEDULE, 1, () => 1),
      5000,
    );
    assert.equal(
      retryDelayMs(DEFAULT_RETRY_SCHEDULE, 4, () => 1),
      40_000,
    );
    assert.equal(
      retryDelayMs(DEFAULT_RETRY_SCHEDULE, 30, () => 1),
      6 * 3600_000,
    );
    assert.equal(
      retryDelayMs(DEFAULT_RETRY_SCHEDULE, 1000, () => 0.5),
      0.75 * 6 * 3600_000,
    );
    let elapsed = 0;
    let tries = 1;
    while (
      elapsed + retryDelayMs(DEFAULT_RETRY_SCHEDULE, tries, () => 1) <=
      DEFAULT_RETRY_SCHEDULE.maxAgeMs
    ) {
      elapsed += retryDelayMs(DEFAULT_RETRY_SCHEDULE, tries, () => 1);
      tries++;
    }
    assert.ok(tries >= 15 && tries <= 30, `${tries} tries in 72 h`);
  });
});
