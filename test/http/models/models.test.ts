// Models API: base models are the HF causal-LM folders under MODELS_DIR (depth 1 or 2).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { findBaseModel, isValidModelId } from "../../../src/store/models/base-models.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import type { TestApp } from "../../support/test-app.js";
import { startAppStack, stopStack } from "../../support/test-stack.js";

function fakeModel(dir: string, opts: { tokenizer?: boolean; sharded?: boolean } = {}): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({ architectures: ["LlamaForCausalLM"] }));
  if (opts.tokenizer !== false) writeFileSync(join(dir, "tokenizer.json"), "{}");
  if (opts.sharded) writeFileSync(join(dir, "model.safetensors.index.json"), "{}");
  else writeFileSync(join(dir, "model.safetensors"), "");
}

describe("base model folders", () => {
  let root: string;
  let outside: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), "models-"));
    outside = mkdtempSync(join(tmpdir(), "outside-"));
    fakeModel(join(root, "tiny"));
    fakeModel(join(root, "org", "name"), { sharded: true });
    fakeModel(join(root, "incomplete"), { tokenizer: false });
    fakeModel(join(root, ".hidden"));
    fakeModel(join(outside, "escaped"));
    symlinkSync(join(outside, "escaped"), join(root, "link-out"));
  });
  after(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it("accepts plain ids and org/name, refuses traversal and odd segments", () => {
    assert.ok(isValidModelId("tiny"));
    assert.ok(isValidModelId("Qwen/Qwen2.5-0.5B-Instruct"));
    for (const bad of ["..", "../x", "a/../b", "/abs", "a/b/c", "", ".hidden", "a//b", "a\\b"]) {
      assert.equal(isValidModelId(bad), false, bad);
    }
  });

  it("finds complete folders only, never outside MODELS_DIR", async () => {
    assert.equal((await findBaseModel({ modelsDir: root }, "tiny"))?.id, "tiny");
    assert.equal((await findBaseModel({ modelsDir: root }, "org/name"))?.id, "org/name");
    assert.equal(await findBaseModel({ modelsDir: root }, "incomplete"), null);
    assert.equal(await findBaseModel({ modelsDir: root }, "link-out"), null);
    assert.equal(await findBaseModel({ modelsDir: root }, "../outside"), null);
  });

  for (const target of testDatabases()) {
    describe(`GET /v1/models [${target.name}]`, () => {
      let db: TestDatabase;
      let app: TestApp;
      before(async () => {
        ({ db, app } = await startAppStack(target, { modelsDir: root }));
      });
      after(() => stopStack({ app, db }));

      it("lists the base models, owned_by system, integer created", async () => {
        const page = await app.client.models.list();
        assert.deepEqual(
          page.data.map((m) => m.id),
          ["org/name", "tiny"],
        );
        for (const m of page.data) {
          assert.equal(m.object, "model");
          assert.equal(m.owned_by, "system");
          assert.ok(Number.isInteger(m.created));
        }
      });

      it("retrieves an id with a slash (sent as %2F) and 404s unknown or escaping ids", async () => {
        const model = await app.client.models.retrieve("org/name");
        assert.equal(model.id, "org/name");
        const raw = await fetch(`${app.baseURL}/models/org/name`, {
          headers: { authorization: `Bearer ${app.apiKey}` },
        });
        assert.equal(((await raw.json()) as { id: string }).id, "org/name");
        for (const id of ["missing", "incomplete", "link-out", "../tiny", "..%2Ftiny"]) {
          const err = await app.client.models.retrieve(id).then(
            () => assert.fail(`expected 404 for ${id}`),
            (e: unknown) => e,
          );
          assert.ok(err instanceof OpenAI.NotFoundError, `${id}: ${err}`);
        }
      });
    });
  }
});
