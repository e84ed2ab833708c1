// Starts the real app (buildApp) on a real port (0 = any free one) over a test database,
// with a project and key, and an official OpenAI SDK client pointed at it. Later suites
// (jobs, chat) reuse it: pass config overrides, and make more projects with newProject().
//
//   const app = await startTestApp({ database: db.handle, config: { maxFileBytes: 1 << 20 } });
//   const file = await app.client.files.create({ file: await toFile(...), purpose: "fine-tune" });
//   await app.close();
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import OpenAI from "openai";
import { type Config, DEFAULT_CONFIG } from "../../src/config.js";
import { buildApp } from "../../src/http/app.js";
import { createApiKey } from "../../src/store/auth/api-keys.js";
import type { DatabaseHandle } from "../../src/store/db/client.js";
import { randomAlphanumeric } from "../../src/store/ids.js";
import { configureTestBackend } from "./engine-backend.js";

export interface TestProject {
  projectId: string;
  apiKey: string;
  client: OpenAI;
}

export interface TestApp extends TestProject {
  app: FastifyInstance;
  config: Config;
  database: DatabaseHandle;
  /** http://127.0.0.1:PORT */
  origin: string;
  /** http://127.0.0.1:PORT/v1 */
  baseURL: string;
  /** a fresh project with its own key and client */
  newProject(name?: string): Promise<TestProject>;
  close(): Promise<void>;
}

export function sdkClient(baseURL: string, apiKey: string): OpenAI {
  // No retries: a test must see the first answer, not a retried one.
  return new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 60_000 });
}

export async function startTestApp(opts: {
  database: DatabaseHandle;
  config?: Partial<Config>;
}): Promise<TestApp> {
  // chat serving sets up the backend on first use: the one this run asks for, as `npm start` does
  configureTestBackend();
  const scratch = mkdtempSync(join(tmpdir(), "tunehouse-test-"));
  const config: Config = {
    ...DEFAULT_CONFIG,
    port: 0,
    host: "127.0.0.1",
    dataDir: join(scratch, "data"),
    modelsDir: join(scratch, "models"),
    logLevel: "silent",
    ...opts.config,
  };
  const app = await buildApp({ config, database: opts.database, logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.server.address();
  if (address === null || typeof address === "string") throw new Error("test app: no TCP address");
  const origin = `http://127.0.0.1:${address.port}`;
  const baseURL = `${origin}/v1`;

  const newProject = async (name = `test-${randomAlphanumeric(8)}`): Promise<TestProject> => {
    const created = await createApiKey(opts.database.db, { projectName: name, source: "cli" });
    return { projectId: created.projectId, apiKey: created.key, client: sdkClient(baseURL, created.key) };
  };
  const main = await newProject();
  return {
    ...main,
    app,
    config,
    database: opts.database,
    origin,
    baseURL,
    newProject,
    async close() {
      await app.close();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
