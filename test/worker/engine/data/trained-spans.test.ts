import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  findSpansByHeader,
  findTrainedSpans,
  probeGenerationPrompt,
} from "../../../../worker/engine/data/trained-spans.js";

// Pure tests with hand-written "templates": render(n, gen) over a list of [role, text] turns.
type Turn = [string, string];

function chatml(turns: Turn[]) {
  return (n: number, gen: boolean) =>
    turns
      .slice(0, n)
      .map(([r, t]) => `<|im_start|>${r}\n${t}<|im_end|>\n`)
      .join("") + (gen ? "<|im_start|>assistant\n" : "");
}

const STOPS = ["<|im_end|>"];

function spanTexts(full: string, spans: { start: number; end: number }[]) {
  return spans.map((s) => full.slice(s.start, s.end));
}

describe("findTrainedSpans", () => {
  it("header end = the generation-prompt render; end = the first stop token after it", () => {
    const turns: Turn[] = [
      ["user", "a"],
      ["assistant", "b"],
      ["user", "c"],
      ["assistant", "d"],
    ];
    const render = chatml(turns);
    const full = render(4, false);
    const spans = findTrainedSpans(render, full, [1, 3], STOPS);
    assert.deepEqual(spanTexts(full, spans), ["b<|im_end|>", "d<|im_end|>"]);
    assert.deepEqual(
      spans.map((s) => s.message),
      [1, 3],
    );
  });

  it("a generation prompt that differs from the turn as rendered: the header ends where they diverge", () => {
    const turns: Turn[] = [
      ["user", "a"],
      ["assistant", "b"],
    ];
    const render = (n: number, gen: boolean) =>
      chatml(turns)(n, false) + (gen ? "<|im_start|>assistant\n[no-think]" : "");
    const full = render(2, false);
    assert.deepEqual(spanTexts(full, findTrainedSpans(render, full, [1], STOPS)), ["b<|im_end|>"]);
  });

  it("a template that renders a message differently when it is last: the header is found after the divergence", () => {
    // Like Qwen3: the last assistant turn gets a "[last]" marker, so rendering the conversation up to
    // an earlier assistant turn does not reproduce the full text.
    const turns: Turn[] = [
      ["user", "a"],
      ["assistant", "b"],
      ["assistant", "c"],
    ];
    const render = (n: number, gen: boolean) =>
      turns
        .slice(0, n)
        .map(
          ([r, t], i) =>
            `<|im_start|>${r}\n${r === "assistant" && i === n - 1 && !gen ? "[last]" : ""}${t}<|im_end|>\n`,
        )
        .join("") + (gen ? "<|im_start|>assistant\n" : "");
    const full = render(3, false);
    assert.deepEqual(spanTexts(full, findTrainedSpans(render, full, [1, 2], STOPS)), [
      "b<|im_end|>",
      "[last]c<|im_end|>",
    ]);
  });

  it("a template without any stop token: the turn's own rendering, trailing whitespace off", () => {
    const turns: Turn[] = [
      ["user", "a"],
      ["assistant", "the answer"],
      ["user", "c"],
    ];
    const render = (n: number, gen: boolean) =>
      turns
        .slice(0, n)
        .map(([r, t]) => `### ${r}:\n${t}\n\n`)
        .join("") + (gen ? "### assistant:\n" : "");
    const full = render(3, false);
    assert.deepEqual(spanTexts(full, findTrainedSpans(render, full, [1], STOPS)), ["the answer"]);
  });

  it("refuses a turn it cannot locate instead of guessing", () => {
    const render = (n: number, gen: boolean) => (gen ? `X${n}` : `Y${n}`);
    assert.throws(() => findTrainedSpans(render, "Z", [0], STOPS), /message 0/);
  });
});

describe("fast path: findSpansByHeader / probeGenerationPrompt", () => {
  const HEADER = "<|im_start|>assistant\n";

  it("probes the generation prompt as the suffix add_generation_prompt appends", () => {
    const render = (messages: { role: string; content: string }[], gen: boolean) =>
      chatml(messages.map((m) => [m.role, m.content] as Turn))(messages.length, gen);
    assert.equal(probeGenerationPrompt(render), HEADER);
    assert.equal(
      probeGenerationPrompt(() => {
        throw new Error("template needs a system message");
      }),
      null,
    );
  });

  it("one header per assistant message: spans equal the render path's", () => {
    const turns: Turn[] = [
      ["user", "a"],
      ["assistant", "b"],
      ["user", "c"],
      ["assistant", "d"],
    ];
    const render = chatml(turns);
    const full = render(4, false);
    const fast = findSpansByHeader(full, [1, 3], [1, 3], HEADER, STOPS);
    assert.deepEqual(fast, findTrainedSpans(render, full, [1, 3], STOPS));
    assert.deepEqual(findSpansByHeader(full, [1, 3], [3], HEADER, STOPS), [
      { message: 3, start: full.lastIndexOf(HEADER) + HEADER.length, end: full.length - 1 },
    ]);
  });

  it("gives up (null) when headers and assistant messages do not line up", () => {
    const full = chatml([
      ["user", "a"],
      ["assistant", "b"],
    ])(2, false);
    assert.equal(
      findSpansByHeader(full, [1, 3], [1], HEADER, STOPS),
      null,
      "fewer headers than assistant turns",
    );
    assert.equal(findSpansByHeader(`${full}${HEADER}`, [1], [1], HEADER, STOPS), null, "more headers");
    assert.equal(
      findSpansByHeader(full, [1], [0], HEADER, STOPS),
      null,
      "a trained message that is not an assistant",
    );
    assert.equal(findSpansByHeader(full, [1], [1], HEADER, ["<|eot|>"]), null, "no stop token");
  });
});
