// Batched decoding (worker/engine/generation/continuous-batcher.ts, CausalLM.forwardCachedRows): every row of
// a shared batch produces exactly what generate() produces for it alone — n choices of one
// prompt, and requests on different adapters of one base that join while others decode — and
// rows stay independent: one stopping early or failing leaves the others finishing.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { initGoldenBackend } from "../../../../scripts/golden/check-golden.js";
import { readServedAdapter, type ServedAdapter } from "../../../../src/serving/served-adapter.js";
import { ContinuousBatcher } from "../../../../worker/engine/generation/continuous-batcher.js";
import { type GenerateOptions, generate } from "../../../../worker/engine/generation/generate.js";
import type { LoraAdapter } from "../../../../worker/engine/lora/lora-adapter.js";
import type { CausalLM } from "../../../../worker/engine/model/causal-lm.js";
import { loadModel } from "../../../../worker/engine/model/load-model.js";

const FIXTURE = path.resolve("test/fixtures/llama");
const ADAPTER = path.join(FIXTURE, "adapter");
const PROMPT_A = [1, 17, 250, 3, 99, 42, 7, 311, 5, 64, 128, 200];
const PROMPT_B = [1, 9, 33, 180, 2, 77];
const PROMPT_C = [1, 300, 301, 12, 13, 14, 15, 16, 90];

let base: CausalLM;
let adapter: ServedAdapter;
/** a second adapter of the same base: the fixture's pairs, scaled the other way */
let negated: LoraAdapter;

before(async () => {
  await initGoldenBackend();
  base = await loadModel(FIXTURE);
  adapter = await readServedAdapter(base, ADAPTER);
  negated = {
    name: "negated",
    settings: { ...adapter.settings, scaling: -adapter.settings.scaling },
    pairs: adapter.pairs,
  };
});
after(() => {
  adapter.dispose();
  base.dispose();
});

/** One-at-a-time generation on the shared base with adapter `a` (passed to the forward, not mounted). */
const generateWith = (a: LoraAdapter | null, prompt: number[], options: GenerateOptions) =>
  generate(base, prompt, { ...options, adapter: a });

describe("continuous batching", () => {
  test("n greedy choices decode in one batch and equal one-at-a-time generation", async () => {
    const batcher = new ContinuousBatcher(base);
    const choices: GenerateOptions[] = [
      { maxNewTokens: 12, temperature: 0 },
      { maxNewTokens: 7, temperature: 0 },
      { maxNewTokens: 12, temperature: 0, topLogprobs: 3 },
    ];
    const batched = await Promise.all(batcher.generate(PROMPT_A, null, choices));
    for (const [i, options] of choices.entries()) {
      const alone = await generate(base, PROMPT_A, options);
      assert.deepEqual(batched[i].ids, alone.ids, `choice ${i}`);
      assert.equal(batched[i].finishReason, alone.finishReason);
      // the logprobs too, up to the rounding of a many-row matmul
      for (const [k, t] of batched[i].tokens.entries())
        assert.ok(Math.abs(t.logprob - alone.tokens[k].logprob) < 1e-4, `choice ${i} token ${k} logprob`);
      assert.deepEqual(
        batched[i].tokens.map((t) => t.topLogprobs?.map((a) => a.id)),
        alone.tokens.map((t) => t.topLogprobs?.map((a) => a.id)),
      );
    }
    // the first token of every choice comes from the shared prefill; then one forward per step
    assert.equal(batcher.stats.steps, 11, "11 decoding steps for 3 choices of up to 12 tokens");
    assert.equal(batcher.stats.rows, 11 + 6 + 11);
  });

  test("seeded sampled choices are reproducible and equal their solo runs", async () => {
    const choices: GenerateOptions[] = [1, 2, 3].map((seed) => ({
      maxNewTokens: 10,
      temperature: 0.9,
      topP: 0.95,
      seed,
      frequencyPenalty: seed === 2 ? 1.5 : 0,
      presencePenalty: seed === 3 ? 1 : 0,
    }));
    const batched = await Promise.all(new ContinuousBatcher(base).generate(PROMPT_A, adapter, choices));
    const again = await Promise.all(new ContinuousBatcher(base).generate(PROMPT_A, adapter, choices));
    assert.deepEqual(
      batched.map((r) => r.ids),
      again.map((r) => r.ids),
    );
    for (const [i, options] of choices.entries())
      assert.deepEqual(batched[i].ids, (await generateWith(adapter, PROMPT_A, options)).ids, `choice ${i}`);
    assert.notDeepEqual(batched[0].ids, batched[1].ids);
  });

  test("requests on different adapters of one base decode together, joining as they arrive", async () => {
    const batcher = new ContinuousBatcher(base);
    const greedy = (maxNewTokens: number, extra: Partial<GenerateOptions> = {}): GenerateOptions => ({
      maxNewTokens,
      temperature: 0,
      ...extra,
    });
    const bias = new Map([[(await generate(base, PROMPT_C, greedy(1))).ids[0], -100]]);
    let late: Promise<unknown> | undefined;
    const runs: { prompt: number[]; adapter: LoraAdapter | null; options: GenerateOptions }[] = [
      { prompt: PROMPT_A, adapter: null, options: greedy(20) },
      { prompt: PROMPT_B, adapter, options: greedy(16) },
      { prompt: PROMPT_C, adapter: negated, options: greedy(12, { logitBias: bias }) },
    ];
    let firstSteps = 0;
    const first = batcher.generate(runs[0].prompt, runs[0].adapter, [
      {
        ...runs[0].options,
        onToken: () => {
          // the other two requests arrive while the first is decoding
          if (++firstSteps === 4)
            late = Promise.all(
              runs.slice(1).flatMap((r) => batcher.generate(r.prompt, r.adapter, [r.options])),
            );
          return undefined;
        },
      },
    ])[0];
    const a = await first;
    const [b, c] = (await late) as Awaited<typeof first>[];
    for (const [i, got] of [a, b, c].entries()) {
      const alone = await generateWith(runs[i].adapter, runs[i].prompt, runs[i].options);
      assert.deepEqual(got.ids, alone.ids, `request ${i}`);
    }
    assert.ok(batcher.stats.rows > batcher.stats.steps, "steps carried several rows");
    assert.ok(batcher.stats.steps < 19 + 15 + 11, "fewer forward passes than one-at-a-time decoding");
  });

  test("a forward pass that fails for one row (its adapter freed mid-run) fails that row only", async () => {
    const batcher = new ContinuousBatcher(base);
    const doomed = await readServedAdapter(base, ADAPTER);
    const options: GenerateOptions = { maxNewTokens: 12, temperature: 0 };
    let steps = 0;
    const [victim] = batcher.generate(PROMPT_B, doomed, [
      {
        ...options,
        onToken: () => {
          if (++steps === 3) doomed.dispose();
          return undefined;
        },
      },
    ]);
    const [first, second] = batcher.generate(PROMPT_A, adapter, [options, { ...options, maxNewTokens: 9 }]);
    const plain = batcher.generate(PROMPT_C, null, [options])[0];
    await assert.rejects(victim); // tfjs: a freed tensor has no backend
    const tuned = await generateWith(adapter, PROMPT_A, options);
    assert.deepEqual((await first).ids, tuned.ids);
    assert.deepEqual((await second).ids, tuned.ids.slice(0, 9));
    assert.deepEqual((await plain).ids, (await generate(base, PROMPT_C, options)).ids);
  });

  test("rows beyond the batcher's bound wait for others to leave, then decode the same", async () => {
    const batcher = new ContinuousBatcher(base, 2);
    const options: GenerateOptions = { maxNewTokens: 8, temperature: 0 };
    const runs = [PROMPT_A, PROMPT_B, PROMPT_C].map(
      (prompt) => batcher.generate(prompt, adapter, [options])[0],
    );
    const results = await Promise.all(runs);
    assert.equal(batcher.stats.widest, 2);
    for (const [i, prompt] of [PROMPT_A, PROMPT_B, PROMPT_C].entries())
      assert.deepEqual(results[i].ids, (await generateWith(adapter, prompt, options)).ids, `request ${i}`);
  });

  test("a row that stops early or fails leaves the others finishing", async () => {
    const batcher = new ContinuousBatcher(base);
    const options: GenerateOptions = { maxNewTokens: 12, temperature: 0 };
    let seen = 0;
    const [stopped, failing, plain] = batcher.generate(PROMPT_A, null, [
      { ...options, onToken: () => (++seen === 3 ? false : undefined) },
      {
        ...options,
        processLogits: (_logits, generated) => {
          if (generated.length === 5) throw new Error("forced failure");
        },
      },
      options,
    ]);
    const other = batcher.generate(PROMPT_B, adapter, [options])[0];
    await assert.rejects(failing, /forced failure/);
    const alone = await generate(base, PROMPT_A, options);
    assert.deepEqual((await stopped).ids, alone.ids.slice(0, 3), "the disconnected row stopped at once");
    assert.deepEqual((await plain).ids, alone.ids);
    assert.deepEqual((await other).ids, (await generateWith(adapter, PROMPT_B, options)).ids);
  });
});
