// The preflight's mask preview against the trainer's own rows: for the tiny model's ChatML, the
// ChatML default of a model without a template, a template that closes turns with eos, and the
// real Llama 3 and Qwen3 templates, every previewed example's segments cover exactly the row's
// tokens, mark trained exactly the row's label tokens, and the trained text equals the row's
// labels decoded; the whole text is what the template rendered.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { IGNORE_INDEX } from "../../../../worker/engine/data/batch.js";
import { profileDataset } from "../../../../worker/engine/data/dataset-profile.js";
import { encodeChat } from "../../../../worker/engine/data/encode-chat.js";
import type { ChatMessage } from "../../../../worker/engine/data/example.js";
import type { MaskSegment } from "../../../../worker/engine/data/mask-preview.js";
import { type ChatTemplate, resolveChatTemplate } from "../../../../worker/engine/hf/chat-template.js";
import { ensureTinyModel } from "../../../../worker/engine/hf/tiny-model.js";
import { type HfTokenizer, loadTokenizer } from "../../../../worker/engine/hf/tokenizer.js";
import { realTokenizerAndTemplate } from "./real-tokenizers.js";

const TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      parameters: { type: "object", properties: { city: { type: "string" } } },
    },
  },
];

const CONVERSATIONS: { messages: ChatMessage[]; tools?: typeof TOOLS }[] = [
  {
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Hi <|im_end|> <|eot_id|> é 🎉" },
      { role: "assistant", content: "Hello!" },
    ],
  },
  {
    messages: [
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: "Checking.",
        tool_calls: [
          { id: "c1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: "tool", tool_call_id: "c1", content: '{"t": 21}' },
      { role: "assistant", content: "21°C." },
      { role: "user", content: "Tomorrow?" },
      { role: "assistant", content: "No idea.", weight: 0 },
      { role: "user", content: "Guess." },
      { role: "assistant", content: "Sunny." },
    ],
    tools: TOOLS,
  },
  {
    messages: [
      { role: "user", content: "Count" },
      { role: "assistant", content: "one two three four five six seven eight nine ten ".repeat(30) },
    ],
  },
];

function lines(): string[] {
  return [
    ...CONVERSATIONS.map((c) => JSON.stringify(c)),
    JSON.stringify({ prompt: "Capital of France?", completion: " Paris" }),
    JSON.stringify({ text: "Plain text, every token trained." }),
  ];
}

/** Runs of consecutive scored labels, each decoded: what the trainer learns, as text. */
function labelRuns(tokenizer: HfTokenizer, labels: Int32Array): string[] {
  const runs: string[] = [];
  let run: number[] = [];
  for (let i = 0; i <= labels.length; i++) {
    if (i < labels.length && labels[i] !== IGNORE_INDEX) run.push(labels[i]);
    else if (run.length) {
      runs.push(tokenizer.decode(run));
      run = [];
    }
  }
  return runs;
}

function segmentRuns(segments: readonly MaskSegment[]): string[] {
  const runs: string[] = [];
  let open = false;
  for (const s of segments) {
    if (s.trained && open) runs[runs.length - 1] += s.text;
    else if (s.trained) runs.push(s.text);
    open = s.trained;
  }
  return runs;
}

function checkPreviewAgainstRows(
  tokenizer: HfTokenizer,
  template: ChatTemplate,
  kwargs?: Record<string, unknown>,
) {
  const input = lines();
  // room for every example but the counting one (the longest), which is cut
  const lengths = profileDataset(input, tokenizer, template, {
    maxSeqLength: 1 << 16,
    packing: false,
    previewExamples: 0,
    templateKwargs: kwargs,
  }).dataset.rows.map((r) => r.inputIds.length);
  const maxSeqLength = Math.max(...lengths.filter((_, k) => k !== 2)) + 5;
  assert.ok(lengths[2] > maxSeqLength);
  const profile = profileDataset(input, tokenizer, template, {
    maxSeqLength,
    packing: false,
    previewExamples: 20,
    templateKwargs: kwargs,
  });
  const { rows, stats } = profile.dataset;
  assert.equal(stats.examples, input.length, JSON.stringify(stats.errors));
  assert.equal(profile.previews.length, input.length);
  assert.equal(stats.truncated, 1, "the counting example is cut");
  profile.previews.forEach((preview, k) => {
    const row = rows[k];
    const what = `line ${preview.line}`;
    assert.ok(preview.kept, what);
    const flags = preview.segments.flatMap((s) => Array<boolean>(s.tokens).fill(s.trained));
    assert.equal(flags.length, row.inputIds.length, `${what}: the segments cover the row's tokens`);
    assert.deepEqual(
      flags,
      Array.from(row.labels, (l) => l !== IGNORE_INDEX),
      `${what}: trained flags per token`,
    );
    assert.deepEqual(
      segmentRuns(preview.segments),
      labelRuns(tokenizer, row.labels),
      `${what}: trained text`,
    );
    assert.ok(segmentRuns(preview.segments).length > 0, `${what}: something is trained`);
    const text = preview.segments.map((s) => s.text).join("");
    assert.equal(text, tokenizer.decode(row.inputIds), `${what}: the whole text`);
    for (const s of preview.segments) {
      if (s.special) assert.equal(s.tokens, 1, `${what}: a special token is its own segment`);
    }
    const conversation = CONVERSATIONS[k];
    if (conversation && !preview.truncated) {
      const rendered = encodeChat(conversation.messages, conversation.tools as never, tokenizer, template, {
        templateKwargs: kwargs,
      }).text;
      assert.equal(text, rendered, `${what}: the text the template rendered`);
    }
  });
  // the weight-0 turn is shown but not trained
  const second = profile.previews[1].segments;
  const idea = second.find((s) => s.text.includes("No idea."));
  assert.ok(idea && !idea.trained);
  // the cut example is previewed as cut
  assert.ok(profile.previews[2].truncated);
  assert.equal(
    profile.previews[2].segments.reduce((n, s) => n + s.tokens, 0),
    maxSeqLength,
  );
}

describe("mask preview equals the trainer's rows", () => {
  let dir: string;
  let tiny: HfTokenizer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "mask-preview-"));
    tiny = await loadTokenizer(join(dir, await ensureTinyModel(dir)));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("tiny model, its ChatML template", () => {
    checkPreviewAgainstRows(
      tiny,
      resolveChatTemplate(tiny.chatTemplate, { specialTokens: tiny.specialTokensMap }),
    );
  });
  it("a model without a template: the ChatML default", () => {
    checkPreviewAgainstRows(tiny, resolveChatTemplate(null, { specialTokens: tiny.specialTokensMap }));
  });
  it("a template that closes each turn with eos_token and prints tools", () => {
    const source =
      "{% if tools %}Tools: {{ tools | tojson }}\n{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n" +
      "{% if m.content %}{{ m.content }}{% endif %}{% if m.tool_calls %}{{ m.tool_calls | tojson }}{% endif %}" +
      "{% if m.role == 'assistant' %}{{ eos_token }}{% else %}\n{% endif %}{% endfor %}" +
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    checkPreviewAgainstRows(tiny, resolveChatTemplate(source, { specialTokens: tiny.specialTokensMap }));
  });
  for (const model of ["llama3", "qwen3"] as const) {
    it(`the real ${model} tokenizer and template`, async () => {
      const { tokenizer, template } = await realTokenizerAndTemplate(model);
      checkPreviewAgainstRows(tokenizer, template);
      if (model === "qwen3") checkPreviewAgainstRows(tokenizer, template, { enable_thinking: false });
    });
  }
});
