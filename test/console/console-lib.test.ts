// The console's pure modules, run in Node (they are plain browser ES modules with no DOM use):
// chart series from metrics events, model lineage from ids, the SSE parser, incremental MD5.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { describe, it } from "node:test";

// console/ is browser JavaScript without type declarations: imported by URL, typed loosely here
const load = (path: string): Promise<any> => import(new URL(`../../console/${path}`, import.meta.url).href);

describe("console modules", () => {
  it("chart series: one point per step, a resumed step's later value wins, absent series left out", async () => {
    const { chartData, LOSS_SERIES, metricsByStep, progressOf, REWARD_SERIES } =
      await load("lib/job-metrics.js");
    const m = (step: number, data: Record<string, number>) => ({
      type: "metrics",
      data: { step, total_steps: 4, ...data },
    });
    const byStep = metricsByStep([
      m(1, { train_loss: 3 }),
      { type: "message", data: null, message: "Checkpoint created at step 1" },
      m(2, { train_loss: 2, valid_loss: 2.5 }),
      m(2, { train_loss: 1.9, valid_loss: 2.4 }), // the same step again after a resume
      m(3, { train_loss: 1.5 }),
    ]);
    const chart = chartData(byStep, LOSS_SERIES);
    assert.deepEqual(
      chart.series.map((s: { key: string }) => s.key),
      ["train_loss", "valid_loss"],
    );
    assert.deepEqual(chart.data, [
      [1, 2, 3],
      [3, 1.9, 1.5],
      [null, 2.4, null],
    ]);
    assert.equal(chartData(byStep, REWARD_SERIES), null);
    assert.deepEqual(progressOf(byStep), { step: 3, total: 4 });
    const dpo = chartData(
      metricsByStep([m(1, { train_rewards_chosen: 0.1, train_rewards_rejected: -0.2 })]),
      REWARD_SERIES,
    );
    assert.deepEqual(
      dpo.series.map((s: { key: string }) => s.key),
      ["train_rewards_chosen", "train_rewards_rejected"],
    );
  });

  it("model lineage from ids: base → job → tuned model and its checkpoints", async () => {
    const { lineage, parseModelId } = await load("lib/model-lineage.js");
    assert.deepEqual(parseModelId("ft:org/llama:proj_1:my-suffix:ftjob-abc:ckpt-step-12"), {
      id: "ft:org/llama:proj_1:my-suffix:ftjob-abc:ckpt-step-12",
      kind: "checkpoint",
      base: "org/llama",
      job: "ftjob-abc",
      suffix: "my-suffix",
      step: 12,
    });
    assert.equal(parseModelId("ft:tiny:proj_1::ftjob-x").suffix, "");
    assert.equal(parseModelId("tiny-chatml").kind, "base");
    const tree = lineage([
      { id: "tiny", created: 1 },
      { id: "other", created: 1 },
      { id: "ft:tiny:p::ftjob-1:ckpt-step-20", created: 3 },
      { id: "ft:tiny:p::ftjob-1", created: 3 },
      { id: "ft:tiny:p::ftjob-1:ckpt-step-10", created: 2 },
      { id: "ft:gone:p:s:ftjob-2", created: 4 },
    ]);
    assert.deepEqual(
      tree.map((b: { base: string; known: boolean }) => [b.base, b.known]),
      [
        ["tiny", true],
        ["other", true],
        ["gone", false],
      ],
    );
    const job = tree[0].tuned[0];
    assert.equal(job.model.id, "ft:tiny:p::ftjob-1");
    assert.deepEqual(
      job.checkpoints.map((c: { step: number }) => c.step),
      [10, 20],
    );
  });

  it("SSE parser: events split anywhere across chunks, ids, event names, comments, CRLF", async () => {
    const { readEventStream } = await load("lib/sse.js");
    const text =
      ': keep-alive\n\nid: e1\nevent: metrics\ndata: {"a":1}\n\r\nid: e2\ndata: line one\ndata: line two\n\nevent: done\ndata: {}\n\n';
    const bytes = new TextEncoder().encode(text);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 7) controller.enqueue(bytes.slice(i, i + 7));
        controller.close();
      },
    });
    const events = [];
    for await (const e of readEventStream(new Response(body))) events.push(e);
    assert.deepEqual(events, [
      { id: "e1", event: "metrics", data: '{"a":1}' },
      { id: "e2", event: "message", data: "line one\nline two" },
      { id: null, event: "done", data: "{}" },
    ]);
  });

  it("MD5 equals Node's, whatever the split of the input", async () => {
    const { Md5 } = await load("lib/md5.js");
    for (const n of [0, 1, 55, 56, 63, 64, 65, 127, 128, 1000, 65537]) {
      const data = randomBytes(n);
      const md5 = new Md5();
      for (let i = 0; i < n; i += 1 + (i % 97)) md5.update(data.subarray(i, Math.min(n, i + 1 + (i % 97))));
      assert.equal(md5.hex(), createHash("md5").update(data).digest("hex"), `${n} bytes`);
    }
  });
});
