// Auth and tenancy: a key sees only its project's resources; another project's ids are
// answered exactly like missing ones (404, never 403).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI, { toFile } from "openai";
import { revokeApiKey } from "../../src/store/auth/api-keys.js";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import { chatJsonl } from "../support/jsonl.js";
import { sdkClient, type TestApp, type TestProject } from "../support/test-app.js";
import { startAppStack, stopStack } from "../support/test-stack.js";

async function rejection(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await p.then(
    () => assert.fail("expected an error"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof OpenAI.APIError, `not an APIError: ${err}`);
  return err;
}

for (const target of testDatabases()) {
  describe(`auth and tenancy [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let other: TestProject;
    before(async () => {
      ({ db, app } = await startAppStack(target));
      other = await app.newProject("second");
    });
    after(() => stopStack({ app, db }));

    it("a second project cannot see, download or delete the first project's file", async () => {
      const file = await app.client.files.create({
        file: await toFile(Buffer.from(chatJsonl(2)), "mine.jsonl"),
        purpose: "fine-tune",
      });
      const missing = await rejection(other.client.files.retrieve("file-doesnotexist0000000000"));
      // one at a time: a rejected promise nobody awaits yet would count as unhandled
      for (const attempt of [
        () => other.client.files.retrieve(file.id),
        () => other.client.files.content(file.id),
        () => other.client.files.delete(file.id),
      ]) {
        const err = await rejection(attempt());
        assert.ok(err instanceof OpenAI.NotFoundError);
        assert.equal(err.status, 404);
        // the same answer as for an id that does not exist, apart from the id itself
        assert.deepEqual(
          { ...(err.error as object), message: "" },
          { ...(missing.error as object), message: "" },
        );
      }
      assert.equal((await other.client.files.list()).data.length, 0);
      // still there for its owner
      assert.equal((await app.client.files.retrieve(file.id)).id, file.id);
    });

    it("a second project cannot touch the first project's upload", async () => {
      const upload = await app.client.uploads.create({
        bytes: 3,
        filename: "x.txt",
        mime_type: "text/plain",
        purpose: "assistants",
      });
      const err = await rejection(
        other.client.uploads.parts.create(upload.id, { data: await toFile(Buffer.from("abc"), "p") }),
      );
      assert.ok(err instanceof OpenAI.NotFoundError);
      assert.ok((await rejection(other.client.uploads.cancel(upload.id))) instanceof OpenAI.NotFoundError);
      assert.ok(
        (await rejection(other.client.uploads.complete(upload.id, { part_ids: [] }))) instanceof
          OpenAI.NotFoundError,
      );
    });

    it("missing, unknown and revoked keys get 401 in the envelope", async () => {
      const noKey = await fetch(`${app.baseURL}/files`);
      assert.equal(noKey.status, 401);
      assert.match(noKey.headers.get("x-request-id") ?? "", /^req_/);
      const body = (await noKey.json()) as { error: Record<string, unknown> };
      assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);

      const unknown = await rejection(sdkClient(app.baseURL, "sk-th-not-a-real-key-000000").files.list());
      assert.ok(unknown instanceof OpenAI.AuthenticationError);
      assert.equal(unknown.code, "invalid_api_key");

      const doomed = await app.newProject();
      assert.equal((await doomed.client.models.list()).object, "list");
      assert.equal(await revokeApiKey(app.database.db, doomed.apiKey), 1);
      assert.ok((await rejection(doomed.client.models.list())) instanceof OpenAI.AuthenticationError);
    });
  });
}
