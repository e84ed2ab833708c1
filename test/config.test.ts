// The settings beside loadConfig that src/config.ts reads from the environment: a worker's own
// (WORKER_*), the shutdown grace of `npm start`, and the api's view of the workers' set-up.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, loadShutdownGraceMs, loadWorkerSettings, workerSetupFromEnv } from "../src/config.js";

describe("loadWorkerSettings", () => {
  it("gives the documented defaults and a host-pid-random id", () => {
    const settings = loadWorkerSettings({});
    assert.equal(settings.leaseSeconds, 60);
    assert.equal(settings.pollSeconds, 10);
    assert.equal(settings.microBatchSize, 4);
    assert.match(settings.workerId, new RegExp(`-${process.pid}-[A-Za-z0-9]{4}$`));
  });
  it("reads every variable and names the one that is wrong", () => {
    const settings = loadWorkerSettings({
      WORKER_ID: " w1 ",
      WORKER_LEASE_SECONDS: "30",
      WORKER_POLL_SECONDS: "0.5",
      WORKER_MICRO_BATCH: "2.7",
    });
    assert.deepEqual(settings, { workerId: "w1", leaseSeconds: 30, pollSeconds: 0.5, microBatchSize: 2 });
    assert.throws(
      () => loadWorkerSettings({ WORKER_LEASE_SECONDS: "0" }),
      (e: unknown) =>
        e instanceof ConfigError && e.message === 'WORKER_LEASE_SECONDS must be a positive number (got "0")',
    );
    assert.throws(() => loadWorkerSettings({ WORKER_MICRO_BATCH: "many" }), /WORKER_MICRO_BATCH/);
  });
});

describe("loadShutdownGraceMs", () => {
  it("is 10 s by default, SHUTDOWN_GRACE_SECONDS otherwise, never negative", () => {
    assert.equal(loadShutdownGraceMs({}), 10_000);
    assert.equal(loadShutdownGraceMs({ SHUTDOWN_GRACE_SECONDS: "1.5" }), 1500);
    assert.equal(loadShutdownGraceMs({ SHUTDOWN_GRACE_SECONDS: "0" }), 0);
    assert.throws(() => loadShutdownGraceMs({ SHUTDOWN_GRACE_SECONDS: "-1" }), ConfigError);
  });
});

describe("workerSetupFromEnv", () => {
  it("assumes wasm for auto and takes a bad micro-batch as the default", () => {
    const unset = { memoryBudget: null };
    assert.deepEqual(workerSetupFromEnv({}), { backend: "wasm", microBatchSize: 4, ...unset });
    assert.deepEqual(workerSetupFromEnv({ TFJS_BACKEND: " TensorFlow ", WORKER_MICRO_BATCH: "2" }), {
      backend: "tensorflow",
      microBatchSize: 2,
      ...unset,
    });
    assert.deepEqual(workerSetupFromEnv({ WORKER_MICRO_BATCH: "0" }), {
      backend: "wasm",
      microBatchSize: 4,
      ...unset,
    });
  });
  it("passes the workers' WORKER_MEMORY_BUDGET on to the preflight", () => {
    assert.ok(workerSetupFromEnv({ WORKER_MEMORY_BUDGET: "12G" }).memoryBudget);
  });
});
