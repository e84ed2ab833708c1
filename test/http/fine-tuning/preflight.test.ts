// POST /v1/fine_tuning/jobs/preflight (and POST /v1/fine_tuning/jobs?dry_run=true) on the tiny
// default model, through the SDK and plain HTTP: a file of 2,000 examples answers in seconds
// with the worker pipeline's counts, resolved hyperparameters with their rules, steps and a
// duration estimate; warnings name the line and the fix; the mask preview is the rendered text;
// bad bodies get create's 400s; another project's file is answered like a missing one; nothing
// is ever created. PGlite and Postgres.
import assert from "node:assert/strict";
import { cp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import type { PreflightObject } from "../../../src/http/fine-tuning/preflight.js";
import { fineTuningJobs } from "../../../src/store/db/schema.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import { trainingLines, uploadTraining } from "../../support/job-fixtures.js";
import type { TestApp } from "../../support/test-app.js";
import { startTinyModelStack, stopStack } from "../../support/test-stack.js";

const chat = (user: string, assistant: string, weight?: 0 | 1) =>
  JSON.stringify({
    messages: [
      { role: "user", content: user },
      { role: "assistant", content: assistant, ...(weight === undefined ? {} : { weight }) },
    ],
  });

/** 2,000 lines: line 3 all weights 0, line 5 too long for max_seq_length 64, line 9 repeats line 1. */
function bigFile(): string {
  const lines: string[] = [];
  for (let i = 1; i <= 2000; i++) {
    if (i === 3) lines.push(chat("Ignore this one", "Not trained", 0));
    else if (i === 5) lines.push(chat("Tell me a long story", "Once upon a time ".repeat(12)));
    else if (i === 9) lines.push(lines[0]);
    else lines.push(chat(`What is ${i} plus one?`, `It is ${i + 1}.`));
  }
  return `${lines.join("\n")}\n`;
}

async function errorOf(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await promise.then(
    () => assert.fail("expected an error"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${err}`);
  return err;
}

for (const target of testDatabases()) {
  describe(`fine-tuning preflight [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let model: string;
    let modelsDir: string;
    let big: string;
    let small: string;

    const preflight = (body: Record<string, unknown>) =>
      app.client.post<PreflightObject>("/fine_tuning/jobs/preflight", { body });
    const jobRows = async () =>
      (await db.handle.db.select({ id: fineTuningJobs.id }).from(fineTuningJobs)).length;

    before(async () => {
      ({ db, app, model, modelsDir } = await startTinyModelStack(target));
      big = await uploadTraining(app.client, bigFile());
      small = await uploadTraining(app.client, trainingLines(12));
    });
    after(() => stopStack({ app, db }));

    it("answers for 2,000 examples in seconds: counts, tokens, resolved values with their rules, steps, duration", async () => {
      const started = performance.now();
      const r = await preflight({
        model,
        training_file: big,
        seed: 7,
        method: { type: "supervised", supervised: { hyperparameters: { max_seq_length: 64 } } },
      });
      const ms = performance.now() - started;
      assert.ok(ms < 15_000, `preflight of 2,000 examples took ${ms.toFixed(0)} ms`);
      assert.equal(r.object, "fine_tuning.preflight");
      assert.equal(r.model, model);
      const t = r.data.training;
      assert.equal(t.examples_read, 2000);
      assert.equal(t.examples_kept, 1999, "line 3 has nothing to train");
      assert.equal(t.examples_dropped, 1);
      assert.equal(t.examples_truncated, 1, "line 5 is cut");
      assert.deepEqual(
        t.problems.map((p) => [p.line, p.code]),
        [[3, "example_missing_trainable_assistant_message"]],
      );
      assert.ok(t.tokens.trained > 0 && t.tokens.trained < t.tokens.total);
      const per = t.tokens.per_example!;
      assert.ok(per.min <= per.median && per.median <= per.max && per.max === 64, JSON.stringify(per));
      assert.ok(t.packing_efficiency > 0.5 && t.packing_efficiency <= 1);
      assert.equal(r.data.validation, null);

      const hp = r.method.supervised.hyperparameters;
      // n = 1999 kept examples: 3 epochs, batch 2 (n < 2000), multiplier sqrt(2/8)
      assert.deepEqual([hp.n_epochs, hp.batch_size, hp.learning_rate_multiplier], [3, 2, 0.5]);
      assert.equal(hp.max_seq_length, 64);
      assert.equal(hp.lora_alpha, 16);
      assert.match(r.auto_rules.n_epochs!, /25000 \/\/ n.*n = 1999 → 3$/);
      assert.match(r.auto_rules.batch_size!, /n < 2000 → 2.*n = 1999 → 2$/);
      assert.match(r.auto_rules.learning_rate_multiplier!, /sqrt\(batch_size \/ 8\).*batch_size 2 → 0.5$/);
      assert.match(r.auto_rules.lora_alpha!, /2 × lora_rank; lora_rank 8 → 16/);

      assert.equal(r.training.steps_per_epoch, Math.ceil(t.rows / 2));
      assert.equal(r.training.total_steps, 3 * r.training.steps_per_epoch);
      assert.ok(r.training.estimated_duration_seconds! >= 1);
      assert.match(
        r.training.duration_source,
        /interpolated by FLOPs ≈ 6·params·tokens between llama fixture .* and gpt-3\.7M/,
      );
      assert.ok(r.training.parameters > 100_000);
      const memory = r.training.memory;
      assert.equal(memory.backend, "wasm");
      assert.ok(memory.fits && memory.estimated_peak_bytes < memory.budget_bytes, JSON.stringify(memory));
      assert.ok(memory.breakdown.weights >= 4 * r.training.parameters);
      assert.ok(
        memory.breakdown.trainable > 0 && memory.breakdown.optimizer > 0 && memory.breakdown.activations > 0,
      );

      const codes = r.warnings.map((w) => w.code);
      const byCode = (code: string) => r.warnings.find((w) => w.code === code)!;
      assert.ok(codes.includes("all_assistant_weights_zero"), codes.join());
      assert.equal(byCode("all_assistant_weights_zero").line, 3);
      assert.match(byCode("all_assistant_weights_zero").message, /line 3\b.*Fix: set "weight": 1/);
      assert.equal(byCode("truncation_drops_trained_tokens").line, 5);
      assert.match(
        byCode("truncation_drops_trained_tokens").message,
        /lose 134 trained token\(s\) to truncation at max_seq_length 64: line 5\. Fix: raise max_seq_length to 199/,
      );
      assert.equal(byCode("duplicate_examples").line, 9);
      assert.ok(!codes.includes("eos_never_trained"), "ChatML trains <|im_end|>");
      // an invalid line fails a job (OpenAI's rule), and the preflight says so with the worker's words
      assert.match(
        byCode("job_would_fail").message,
        /invalid_training_file, training_file.*1 invalid example\(s\): line 3: every assistant message has weight 0/,
      );
      assert.equal(await jobRows(), 0, "a preflight creates no job");
    });

    it("previews the first examples as the trainer tokenizes them (default 5, at most 20)", async () => {
      const r = await preflight({ model, training_file: small });
      assert.equal(r.preview.length, 5);
      const first = r.preview[0];
      assert.equal(first.line, 1);
      assert.equal(
        first.segments.map((s) => s.text).join(""),
        "<|im_start|>user\nCapital 0?<|im_end|>\n<|im_start|>assistant\nCity 0.<|im_end|>\n",
      );
      const trained = first.segments
        .filter((s) => s.trained)
        .map((s) => s.text)
        .join("");
      assert.equal(trained, "City 0.<|im_end|>");
      assert.deepEqual(
        first.segments.filter((s) => s.special).map((s) => [s.text, s.tokens]),
        [
          ["<|im_start|>", 1],
          ["<|im_end|>", 1],
          ["<|im_start|>", 1],
          ["<|im_end|>", 1],
        ],
      );
      assert.equal(
        first.segments.reduce((n, s) => n + s.tokens, 0),
        r.data.training.tokens.total / 12,
      );
      assert.equal((await preflight({ model, training_file: small, preview_examples: 0 })).preview.length, 0);
      assert.equal(
        (await preflight({ model, training_file: small, preview_examples: 20 })).preview.length,
        12,
      );
    });

    it("gives the same 400 as create for every bad body, and 400 for preview_examples out of range", async () => {
      const other = await app.newProject();
      const foreign = await uploadTraining(other.client, trainingLines(12));
      const sup = (hp: Record<string, unknown>) => ({
        method: { type: "supervised", supervised: { hyperparameters: hp } },
      });
      const bodies: Record<string, unknown>[] = [
        { training_file: small },
        { model },
        { model: "no-such-model", training_file: small },
        { model, training_file: "file-missing" },
        { model, training_file: small, validation_file: "file-missing" },
        { model, training_file: small, method: { type: "reinforcement" } },
        { model, training_file: small, suffix: "a:b" },
        { model, training_file: small, seed: -1 },
        { model, training_file: small, hyperparameters: { n_epochs: 0 } },
        { model, training_file: small, ...sup({ lora_rank: 0 }) },
        { model, training_file: small, ...sup({ target_modules: ["wq"] }) },
      ];
      for (const body of bodies) {
        const viaCreate = await errorOf(app.client.fineTuning.jobs.create(body as never));
        const viaPreflight = await errorOf(preflight(body));
        assert.equal(viaPreflight.status, 400);
        assert.deepEqual(
          [viaPreflight.status, viaPreflight.param, viaPreflight.code, viaPreflight.message],
          [viaCreate.status, viaCreate.param, viaCreate.code, viaCreate.message],
          JSON.stringify(body),
        );
      }
      // a dpo job's pairs are not previewed: a 400 naming method.type, and nothing created
      const dpo = await errorOf(preflight({ model, training_file: small, method: { type: "dpo" } }));
      assert.deepEqual([dpo.status, dpo.param, dpo.code], [400, "method.type", "unsupported_method"]);
      // another project's file is answered exactly like a missing one
      const missing = await errorOf(preflight({ model, training_file: "file-nope" }));
      const theirs = await errorOf(preflight({ model, training_file: foreign }));
      assert.deepEqual(
        [theirs.status, theirs.param, theirs.code, theirs.message.replace(foreign, "ID")],
        [missing.status, missing.param, missing.code, missing.message.replace("file-nope", "ID")],
      );
      for (const bad of [21, -1, 1.5, "3"]) {
        const err = await errorOf(preflight({ model, training_file: small, preview_examples: bad }));
        assert.equal(err.status, 400);
        assert.equal(err.param, "preview_examples");
      }
      assert.equal(await jobRows(), 0);
    });

    it("answers the same over plain HTTP and as POST /fine_tuning/jobs?dry_run=true, creating nothing", async () => {
      const body = JSON.stringify({ model, training_file: small, seed: 3, preview_examples: 1 });
      const headers = { authorization: `Bearer ${app.apiKey}`, "content-type": "application/json" };
      const direct = await fetch(`${app.baseURL}/fine_tuning/jobs/preflight`, {
        method: "POST",
        headers,
        body,
      });
      const dry = await fetch(`${app.baseURL}/fine_tuning/jobs?dry_run=true`, {
        method: "POST",
        headers,
        body,
      });
      assert.equal(direct.status, 200);
      assert.equal(dry.status, 200);
      const a = (await direct.json()) as PreflightObject;
      const b = (await dry.json()) as PreflightObject;
      assert.deepEqual(b, a);
      const noKey = await fetch(`${app.baseURL}/fine_tuning/jobs/preflight`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      assert.equal(noKey.status, 401);
      const badFlag = await fetch(`${app.baseURL}/fine_tuning/jobs?dry_run=maybe`, {
        method: "POST",
        headers,
        body,
      });
      assert.equal(badFlag.status, 400);
      assert.equal(((await badFlag.json()) as { error: { param: string } }).error.param, "dry_run");
      assert.equal(await jobRows(), 0);
      assert.equal((await app.client.fineTuning.jobs.list()).data.length, 0);
    });

    it("warns when the peak-memory estimate exceeds the workers' budget", async () => {
      const saved = process.env.WORKER_MEMORY_BUDGET;
      process.env.WORKER_MEMORY_BUDGET = "1M";
      try {
        const r = await preflight({ model, training_file: small });
        assert.equal(r.training.memory.fits, false);
        assert.equal(r.training.memory.budget_bytes, 2 ** 20);
        assert.equal(r.training.memory.budget_source, "WORKER_MEMORY_BUDGET");
        const w = r.warnings.find((x) => x.code === "memory_exceeds_budget")!;
        assert.match(
          w.message,
          /exceeds the wasm budget \(0\.00 GiB, WORKER_MEMORY_BUDGET\)\. Fix: lower max_seq_length/,
        );
      } finally {
        if (saved === undefined) delete process.env.WORKER_MEMORY_BUDGET;
        else process.env.WORKER_MEMORY_BUDGET = saved;
      }
    });

    it("warns about a validation file sharing examples, too few examples, a missing template and an untrained eos", async () => {
      const validation = await uploadTraining(app.client, trainingLines(3, 4) + trainingLines(1, 2));
      const few = await uploadTraining(app.client, trainingLines(4));
      const r = await preflight({ model, training_file: few, validation_file: validation });
      const overlap = r.warnings.find((w) => w.code === "validation_overlaps_training")!;
      assert.ok(overlap, JSON.stringify(r.warnings));
      assert.equal(overlap.line, 4);
      assert.match(overlap.message, /1 example\(s\).*4 → 3/);
      const fail = r.warnings.find((w) => w.code === "job_would_fail")!;
      assert.match(
        fail.message,
        /invalid_n_examples, training_file.*4 example\(s\), but must have at least 10/,
      );
      assert.equal(r.data.validation!.examples_kept, 4);

      // the same model without a chat template, and one whose template never closes a turn with a stop token
      const plain = join(modelsDir, "tiny-no-template");
      const noStop = join(modelsDir, "tiny-no-stop");
      for (const [dir, template] of [
        [plain, undefined],
        [noStop, "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"],
      ] as const) {
        await cp(join(modelsDir, model), dir, { recursive: true });
        const configPath = join(dir, "tokenizer_config.json");
        const config = JSON.parse(await readFile(configPath, "utf8"));
        if (template) config.chat_template = template;
        else delete config.chat_template;
        await writeFile(configPath, JSON.stringify(config));
      }
      try {
        const r1 = await preflight({ model: "tiny-no-template", training_file: small });
        assert.equal(r1.chat_template, "chatml_default");
        assert.match(
          r1.warnings.find((w) => w.code === "no_chat_template")!.message,
          /ChatML default.*Fix: add the model's chat_template/,
        );
        const r2 = await preflight({ model: "tiny-no-stop", training_file: small });
        const eos = r2.warnings.find((w) => w.code === "eos_never_trained")!;
        assert.ok(eos, JSON.stringify(r2.warnings));
        assert.equal(eos.line, 1);
        assert.match(
          eos.message,
          /12 example\(s\) never train an end-of-turn\/eos token.*lines 1, 2, 3.*Fix:/,
        );
      } finally {
        await rm(plain, { recursive: true, force: true });
        await rm(noStop, { recursive: true, force: true });
      }
      assert.equal(await jobRows(), 0);
    });
  });
}
