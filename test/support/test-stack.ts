// The stack most API suites run on, started in `before` and stopped in `after`: a database of one
// target, the real app over it (test-app.ts), optionally the tiny default model as MODELS_DIR and
// an in-process worker. A start that fails halfway stops what it had started.
//
//   let db: TestDatabase, app: TestApp, worker: RunningWorker, model: string;
//   before(async () => {
//     ({ db, app, worker, model } = await startJobsStack(target));
//   });
//   after(() => stopStack({ worker, app, db }));
import type { Config } from "../../src/config.js";
import type { RunningWorker } from "../../worker/worker-loop.js";
import type { TestDatabase, TestDatabaseTarget } from "./databases.js";
import { startTestWorker, type TestWorkerOptions, tinyModelsDir } from "./job-fixtures.js";
import { startTestApp, type TestApp } from "./test-app.js";

export interface TestStack {
  db: TestDatabase;
  app: TestApp;
}

export interface TinyModelStack extends TestStack {
  /** the tiny default model's id */
  model: string;
  /** the models folder holding it (the app's MODELS_DIR) */
  modelsDir: string;
}

export interface JobsStack extends TinyModelStack {
  worker: RunningWorker;
}

/** Stops what was started, the worker first; parts never started are skipped. */
export async function stopStack(parts: {
  worker?: RunningWorker;
  app?: TestApp;
  db?: TestDatabase;
}): Promise<void> {
  await parts.worker?.stop();
  await parts.app?.close();
  await parts.db?.dispose();
}

/** A database of `target` and the app over it, with `config` over the test defaults. */
export async function startAppStack(
  target: TestDatabaseTarget,
  config: Partial<Config> = {},
): Promise<TestStack> {
  const db = await target.open();
  try {
    return { db, app: await startTestApp({ database: db.handle, config }) };
  } catch (err) {
    await stopStack({ db });
    throw err;
  }
}

/** startAppStack with the tiny default model's folder as MODELS_DIR. */
export async function startTinyModelStack(
  target: TestDatabaseTarget,
  config: Partial<Config> = {},
): Promise<TinyModelStack> {
  const { dir: modelsDir, model } = await tinyModelsDir();
  return { ...(await startAppStack(target, { modelsDir, ...config })), model, modelsDir };
}

/** startTinyModelStack plus an in-process worker on the same database and models. */
export async function startJobsStack(
  target: TestDatabaseTarget,
  opts: { config?: Partial<Config>; worker?: TestWorkerOptions } = {},
): Promise<JobsStack> {
  const stack = await startTinyModelStack(target, opts.config);
  try {
    return { ...stack, worker: await startTestWorker(stack.db.handle, stack.modelsDir, opts.worker) };
  } catch (err) {
    await stopStack(stack);
    throw err;
  }
}
