// Closing the loop through the SDK: fine-tune the tiny default model in the test (a real job on
// the in-process worker) to memorise three answers, then chat with `job.fine_tuned_model`:
// greedy returns each memorised answer and stops at the end of the turn; stream = non-stream;
// a checkpoint model answers; the served adapter gives the logprobs of the merged weights;
// seeds reproduce; another project cannot use the model.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { encodeChatPrompt } from "../../../src/serving/prompt-encoding.js";
import { generate } from "../../../worker/engine/generation/generate.js";
import { resolveChatTemplate } from "../../../worker/engine/hf/chat-template.js";
import { loadTokenizer } from "../../../worker/engine/hf/tokenizer.js";
import { loadModel } from "../../../worker/engine/model/load-model.js";
import type { RunningWorker } from "../../../worker/worker-loop.js";
import { type TestDatabase, testDatabases } from "../../support/databases.js";
import {
  downloadArchive,
  isFinished,
  trainMemorisingJob,
  uploadTraining,
  waitForJob,
} from "../../support/job-fixtures.js";
import { writeMergedModel } from "../../support/merged-weights.js";
import type { TestApp } from "../../support/test-app.js";
import { startJobsStack, stopStack } from "../../support/test-stack.js";

const QA: [string, string][] = [
  ["What is the capital of France?", "Paris."],
  ["What color is the sky?", "Blue."],
  ["Who wrote Hamlet?", "Shakespeare."],
];

/** 12 lines (the API's minimum is 10): the three pairs, four times each. */
function memorisationLines(): string {
  return Array.from({ length: 12 }, (_, i) =>
    JSON.stringify({
      messages: [
        { role: "user", content: QA[i % 3][0] },
        { role: "assistant", content: QA[i % 3][1] },
      ],
    }),
  ).join("\n");
}

const ask = (q: string) => [{ role: "user" as const, content: q }];

for (const target of testDatabases()) {
  describe(`chat with a model tuned in the test [${target.name}]`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let worker: RunningWorker;
    let modelsDir: string;
    let baseModel: string;
    let jobId: string;
    let tuned: string;
    let scratch: string;

    before(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), "tuned-chat-"));
      ({ db, app, worker, model: baseModel, modelsDir } = await startJobsStack(target));
      const lines = memorisationLines();
      const done = await trainMemorisingJob(app.client, {
        model: baseModel,
        lines,
        maxSeqLength: 64,
        timeoutMs: 240_000,
      });
      jobId = done.id;
      tuned = done.fine_tuned_model!;
      assert.match(tuned, /^ft:/);
    });
    after(async () => {
      await stopStack({ worker, app, db });
      if (scratch) await rm(scratch, { recursive: true, force: true });
    });

    test("greedy chat returns each memorised answer and stops at the end of the turn", async () => {
      for (const [q, a] of QA) {
        const r = await app.client.chat.completions.create({
          model: tuned,
          messages: ask(q),
          temperature: 0,
          max_tokens: 30,
        });
        assert.equal(r.model, tuned);
        assert.equal(r.choices[0].message.content, a, q);
        assert.equal(
          r.choices[0].finish_reason,
          "stop",
          "the end-of-turn token was trained and ends generation",
        );
        assert.ok((r.usage?.completion_tokens ?? 99) < 30);
      }
      // the base model does not know the answers
      const base = await app.client.chat.completions.create({
        model: baseModel,
        messages: ask(QA[0][0]),
        temperature: 0,
        max_tokens: 8,
      });
      assert.notEqual(base.choices[0].message.content, QA[0][1]);
    });

    test("streamed and non-streamed give the same text; the stream helper accepts it", async () => {
      const body = { model: tuned, messages: ask(QA[2][0]), temperature: 0, max_tokens: 30 };
      const whole = await app.client.chat.completions.create(body);
      let streamed = "";
      const finishes: (string | null)[] = [];
      for await (const chunk of await app.client.chat.completions.create({ ...body, stream: true })) {
        streamed += chunk.choices[0]?.delta.content ?? "";
        if (chunk.choices[0]?.finish_reason) finishes.push(chunk.choices[0].finish_reason);
      }
      assert.equal(streamed, whole.choices[0].message.content);
      assert.deepEqual(finishes, ["stop"]);
      const final = await app.client.chat.completions.stream(body).finalChatCompletion();
      assert.equal(final.choices[0].message.content, QA[2][1]);
    });

    test("a stop string cuts the memorised answer", async () => {
      const r = await app.client.chat.completions.create({
        model: tuned,
        messages: ask(QA[0][0]),
        temperature: 0,
        stop: "is",
      });
      assert.deepEqual([r.choices[0].message.content, r.choices[0].finish_reason], ["Par", "stop"]);
    });

    test("checkpoint models answer; the last epoch's checkpoint is the tuned model", async () => {
      const checkpoints = (await app.client.fineTuning.jobs.checkpoints.list(jobId)).data;
      assert.ok(checkpoints.length >= 2, `${checkpoints.length} checkpoints`);
      const byStep = [...checkpoints].sort((x, y) => x.step_number - y.step_number);
      const last = byStep.at(-1)!;
      const r = await app.client.chat.completions.create({
        model: last.fine_tuned_model_checkpoint,
        messages: ask(QA[1][0]),
        temperature: 0,
        max_tokens: 30,
      });
      assert.equal(r.model, last.fine_tuned_model_checkpoint);
      assert.deepEqual([r.choices[0].message.content, r.choices[0].finish_reason], [QA[1][1], "stop"]);
      const early = await app.client.chat.completions.create({
        model: byStep[0].fine_tuned_model_checkpoint,
        messages: ask(QA[1][0]),
        temperature: 0,
        max_tokens: 10,
      });
      assert.equal(typeof early.choices[0].message.content, "string");
      assert.ok(["stop", "length"].includes(early.choices[0].finish_reason));
    });

    test("concurrent requests on the base and two adapters decode together, each as it would alone", async () => {
      const checkpoints = (await app.client.fineTuning.jobs.checkpoints.list(jobId)).data;
      const early = [...checkpoints].sort((x, y) => x.step_number - y.step_number)[0]
        .fine_tuned_model_checkpoint;
      const bodies = [
        { model: baseModel, messages: ask(QA[0][0]), temperature: 0, max_tokens: 24 },
        { model: tuned, messages: ask(QA[1][0]), temperature: 0, max_tokens: 24 },
        { model: early, messages: ask(QA[2][0]), temperature: 0, max_tokens: 16 },
        { model: tuned, messages: ask(QA[2][0]), temperature: 0, max_tokens: 24, n: 3 },
      ];
      const alone: (string | null)[][] = [];
      for (const body of bodies)
        alone.push((await app.client.chat.completions.create(body)).choices.map((c) => c.message.content));
      assert.deepEqual(alone[3], [QA[2][1], QA[2][1], QA[2][1]], "n greedy choices agree");
      // a stream on the base model that its client leaves after a few chunks, among the others
      const leaving = (async () => {
        const stream = await app.client.chat.completions.create({
          model: baseModel,
          messages: ask(QA[1][0]),
          temperature: 0,
          max_tokens: 1000,
          stream: true,
        });
        let chunks = 0;
        for await (const _ of stream) if (++chunks === 3) break; // leaving the loop aborts the request
        return chunks;
      })();
      const together = await Promise.all([
        ...bodies.map((body) => app.client.chat.completions.create(body)),
        leaving,
      ]);
      assert.equal(together.pop(), 3);
      assert.deepEqual(
        together.map((r) => (r as OpenAI.ChatCompletion).choices.map((c) => c.message.content)),
        alone,
      );
    });

    test("the served adapter gives the logprobs of the merged weights W + scaling·B·A", async () => {
      const adapterDir = await mkdtemp(path.join(scratch, "adapter-"));
      await downloadArchive(app, `/fine_tuning/jobs/${jobId}/adapter`, adapterDir);
      const mergedDir = await mkdtemp(path.join(scratch, "merged-"));
      assert.equal(await writeMergedModel(path.join(modelsDir, baseModel), adapterDir, mergedDir), 28);

      const question = "Tell me something.";
      const served = await app.client.chat.completions.create({
        model: tuned,
        messages: ask(question),
        temperature: 0,
        max_tokens: 8,
        logprobs: true,
        top_logprobs: 3,
      });
      const merged = await loadModel(mergedDir);
      try {
        const tokenizer = await loadTokenizer(mergedDir);
        const template = resolveChatTemplate(tokenizer.chatTemplate, {
          specialTokens: tokenizer.specialTokensMap,
        });
        const prompt = encodeChatPrompt(ask(question), null, tokenizer, template);
        assert.equal(served.usage?.prompt_tokens, prompt.ids.length);
        const local = await generate(merged, prompt.ids, {
          maxNewTokens: 8,
          temperature: 0,
          topLogprobs: 3,
          stopTokenIds: tokenizer.stopIds,
        });
        const apiTokens = served.choices[0].logprobs?.content ?? [];
        assert.equal(apiTokens.length, local.ids.length);
        local.ids.forEach((id, i) => {
          assert.equal(apiTokens[i].token, tokenizer.decode([id]));
          assert.ok(Math.abs(apiTokens[i].logprob - local.tokens[i].logprob) < 1e-3, `token ${i}`);
          local.tokens[i].topLogprobs!.forEach((alt, k) => {
            assert.ok(
              Math.abs(apiTokens[i].top_logprobs[k].logprob - alt.logprob) < 1e-3,
              `token ${i} alt ${k}`,
            );
          });
        });
      } finally {
        merged.dispose();
      }
    });

    test("a fully fine-tuned model (whole weights, no adapter) is served too", async () => {
      const training = await uploadTraining(app.client, memorisationLines(), "full.jsonl");
      const job = await app.client.fineTuning.jobs.create({
        model: baseModel,
        training_file: training,
        seed: 2,
        method: {
          type: "supervised",
          supervised: {
            hyperparameters: { n_epochs: 1, batch_size: 4, max_seq_length: 64, full_finetune: true },
          },
        },
      } as OpenAI.FineTuning.JobCreateParams);
      const done = await waitForJob(app.client, job.id, isFinished, 120_000);
      assert.equal(done.status, "succeeded", JSON.stringify(done.error));
      const body = { model: done.fine_tuned_model!, messages: ask(QA[0][0]), temperature: 0, max_tokens: 6 };
      const r = await app.client.chat.completions.create(body);
      assert.equal(r.model, done.fine_tuned_model);
      let streamed = "";
      for await (const c of await app.client.chat.completions.create({ ...body, stream: true }))
        streamed += c.choices[0]?.delta.content ?? "";
      assert.equal(streamed, r.choices[0].message.content);
      const base = await app.client.chat.completions.create({ ...body, model: baseModel, logprobs: true });
      const full = await app.client.chat.completions.create({ ...body, logprobs: true });
      assert.notDeepEqual(
        full.choices[0].logprobs?.content?.map((t) => t.logprob),
        base.choices[0].logprobs?.content?.map((t) => t.logprob),
        "its own weights, not the base model's",
      );
    });

    test("seeded sampling on the tuned model reproduces; another project gets 404 model_not_found", async () => {
      const body = {
        model: tuned,
        messages: ask("Say anything."),
        temperature: 1.5,
        max_tokens: 10,
        seed: 99,
      };
      const a = await app.client.chat.completions.create(body);
      const b = await app.client.chat.completions.create(body);
      assert.equal(a.choices[0].message.content, b.choices[0].message.content);
      const other = await app.newProject();
      await assert.rejects(
        other.client.chat.completions.create({ model: tuned, messages: ask(QA[0][0]) }),
        (err: unknown) => {
          assert.ok(err instanceof OpenAI.NotFoundError);
          assert.equal(err.code, "model_not_found");
          return true;
        },
      );
    });
  });
}
