import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { findTrainedSpans } from "../../../worker/engine/data/trained-spans.js";

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
