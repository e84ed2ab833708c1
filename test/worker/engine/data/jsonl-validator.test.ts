import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  createJsonlValidator,
  JsonlFatalError,
  type JsonlSummary,
} from "../../../../worker/engine/data/jsonl-validator.js";
import { validateExample } from "../../../../worker/engine/data/validate-example.js";

const enc = new TextEncoder();
const CAP = 4096;

const chatLine = JSON.stringify({
  messages: [
    { role: "user", content: "Ça va? 👋" },
    { role: "assistant", content: "Très bien, merci — 谢谢" },
  ],
});
const preferenceLine = JSON.stringify({
  input: { messages: [{ role: "user", content: "2+2?" }] },
  preferred_output: [{ role: "assistant", content: "4" }],
  non_preferred_output: [{ role: "assistant", content: "5" }],
});
const badWeightLine = JSON.stringify({
  messages: [
    { role: "user", content: "hi" },
    { role: "assistant", content: "yo", weight: 2 },
  ],
});

/** Pushes `bytes` cut at the given offsets, then finishes. */
interface ValidatorOptions {
  maxLineBytes: number;
  maxErrors?: number;
}

function validateSplit(
  bytes: Uint8Array,
  cuts: number[],
  opts: ValidatorOptions = { maxLineBytes: CAP },
): JsonlSummary {
  const validator = createJsonlValidator(opts);
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    validator.push(bytes.subarray(start, cut));
    start = cut;
  }
  return validator.finish();
}

function validateBytewise(bytes: Uint8Array, opts: ValidatorOptions = { maxLineBytes: CAP }): JsonlSummary {
  const validator = createJsonlValidator(opts);
  for (let i = 0; i < bytes.length; i++) validator.push(bytes.subarray(i, i + 1));
  return validator.finish();
}

function fatalOf(run: () => unknown): JsonlFatalError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof JsonlFatalError, `expected JsonlFatalError, got ${error}`);
    return error;
  }
  assert.fail("expected a JsonlFatalError");
}

function bytesOf(...parts: (string | number[])[]): Uint8Array {
  const arrays = parts.map((p) => (typeof p === "string" ? enc.encode(p) : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

describe("createJsonlValidator", () => {
  // BOM, CRLF, blank and whitespace-only lines, multi-byte UTF-8, a schema error, no final newline.
  const small = bytesOf(
    [0xef, 0xbb, 0xbf],
    `${chatLine}\r\n\n  \t\r\n${badWeightLine}\n${preferenceLine}\r\n\r\n${chatLine}`,
  );
  const expected: JsonlSummary = {
    format: "mixed",
    examples: 4,
    valid_examples: 3,
    invalid_examples: 1,
    errors: [{ line: 4, code: "invalid_weight", message: "messages[1].weight must be 0 or 1 (got 2)" }],
  };

  test("summarises a file with BOM, CRLF, blank lines, a schema error and mixed formats", () => {
    assert.deepEqual(validateSplit(small, []), expected);
  });

  test("every split point, and byte-at-a-time chunks, give the same summary", () => {
    for (let cut = 0; cut <= small.length; cut++) {
      assert.deepEqual(validateSplit(small, [cut]), expected, `split at byte ${cut}`);
    }
    assert.deepEqual(validateBytewise(small), expected);
  });

  test("every split point of a fatal file names the same line and code", () => {
    const bad = bytesOf(`${chatLine}\n\n${chatLine.slice(0, 20)}`, [0xc3, 0x28], `"}\n${chatLine}\n`);
    for (let cut = 0; cut <= bad.length; cut++) {
      const error = fatalOf(() => validateSplit(bad, [cut]));
      assert.equal(error.code, "invalid_utf8", `split at byte ${cut}`);
      assert.equal(error.line, 3, `split at byte ${cut}`);
    }
  });

  test("detects a single format, and null when there are no valid examples", () => {
    const chatOnly = validateSplit(enc.encode(`${chatLine}\n${chatLine}\n`), []);
    assert.equal(chatOnly.format, "chat");
    assert.equal(chatOnly.examples, 2);
    const text = validateSplit(enc.encode('{"text":"a"}\n{"prompt":"q","completion":"a"}\n'), []);
    assert.equal(text.format, "mixed");
    assert.equal(
      validateSplit(enc.encode('{"prompt":"q","completion":"a"}'), []).format,
      "prompt_completion",
    );
    const empty = validateSplit(enc.encode("\n\r\n"), []);
    assert.deepEqual(empty, {
      format: null,
      examples: 0,
      valid_examples: 0,
      invalid_examples: 0,
      errors: [],
    });
    const allBad = validateSplit(enc.encode('{"text":""}\n'), []);
    assert.equal(allBad.format, null);
    assert.equal(allBad.invalid_examples, 1);
  });

  test("records schema errors with 1-based line numbers, the first maxErrors only, counting all", () => {
    const lines = [chatLine, badWeightLine, "", '{"foo":1}', chatLine, '{"text":""}', badWeightLine];
    const summary = validateSplit(enc.encode(lines.join("\n")), [], { maxLineBytes: CAP, maxErrors: 2 });
    assert.equal(summary.examples, 6);
    assert.equal(summary.valid_examples, 2);
    assert.equal(summary.invalid_examples, 4);
    assert.deepEqual(
      summary.errors.map((e) => [e.line, e.code]),
      [
        [2, "invalid_weight"],
        [4, "unrecognized_format"],
      ],
    );
    const all = validateSplit(enc.encode(lines.join("\n")), []);
    assert.deepEqual(
      all.errors.map((e) => e.line),
      [2, 4, 6, 7],
    );
  });

  test("invalid UTF-8 is fatal and names the line (also a sequence cut off at the end of the file)", () => {
    const overlong = bytesOf(`${chatLine}\n`, '{"text":"', [0xc0, 0xaf], '"}\n');
    let error = fatalOf(() => validateSplit(overlong, []));
    assert.equal(error.code, "invalid_utf8");
    assert.equal(error.line, 2);
    assert.match(error.message, /^Line 2 is not valid UTF-8/);
    const truncated = bytesOf(`${chatLine}\n\n`, '{"text":"', [0xf0, 0x9f, 0x91]);
    error = fatalOf(() => validateBytewise(truncated));
    assert.equal(error.code, "invalid_utf8");
    assert.equal(error.line, 3);
  });

  test("a line that is not JSON is fatal with the parser's reason", () => {
    const error = fatalOf(() => validateSplit(enc.encode(`${chatLine}\n{"messages": [}\n${chatLine}\n`), []));
    assert.equal(error.code, "invalid_json");
    assert.equal(error.line, 2);
    assert.match(error.message, /Line 2 is not valid JSON: Unexpected token '}'/);
  });

  test("a BOM is accepted only at the start of the file", () => {
    const error = fatalOf(() =>
      validateSplit(bytesOf(`${chatLine}\n`, [0xef, 0xbb, 0xbf], `${chatLine}\n`), []),
    );
    assert.equal(error.code, "invalid_json");
    assert.equal(error.line, 2);
  });

  test("a JSON value that is not an object is fatal", () => {
    for (const [line, got] of [
      ["[1,2]", "an array"],
      ["42", "a number"],
      ['"text"', "a string"],
      ["null", "null"],
    ]) {
      const error = fatalOf(() => validateSplit(enc.encode(`${chatLine}\n\n${line}\n`), []));
      assert.equal(error.code, "not_an_object");
      assert.equal(error.line, 3);
      assert.equal(
        error.message,
        `Expected file to have JSONL format, where every line is a JSON dictionary. Line 3 is not a dictionary (got ${got}).`,
      );
    }
  });

  test("line cap: a line of exactly the cap passes (also with CRLF), one byte more is fatal", () => {
    const cap = 64;
    const textLine = (bytes: number) => `{"text":"${"a".repeat(bytes - 11)}"}`;
    assert.equal(enc.encode(textLine(cap)).length, cap);
    const okSummary = validateBytewise(enc.encode(`${textLine(cap)}\r\n${textLine(cap)}\n${textLine(cap)}`), {
      maxLineBytes: cap,
    });
    assert.equal(okSummary.valid_examples, 3);
    for (const file of [
      `${textLine(cap)}\n${textLine(cap + 1)}\n`,
      `${textLine(cap)}\n${textLine(cap + 1)}`,
    ]) {
      const error = fatalOf(() => validateSplit(enc.encode(file), [], { maxLineBytes: cap }));
      assert.equal(error.code, "line_too_long");
      assert.equal(error.line, 2);
      assert.equal(error.message, "Line 2 is longer than the maximum line length of 64 bytes.");
    }
  });

  test("an over-long line is refused while it streams, without waiting for its end", () => {
    const cap = 1000;
    const validator = createJsonlValidator({ maxLineBytes: cap });
    validator.push(enc.encode(`${chatLine}\n{"text":"`));
    const chunk = enc.encode("a".repeat(100));
    let pushed = 0;
    const error = fatalOf(() => {
      for (; pushed < 1000; pushed++) validator.push(chunk);
    });
    assert.equal(error.code, "line_too_long");
    assert.equal(error.line, 2);
    assert.ok(pushed <= 10, `refused only after ${pushed} chunks of 100 bytes`);
    // The validator stays failed with the same error.
    assert.equal(
      fatalOf(() => validator.push(chunk)),
      error,
    );
    assert.equal(
      fatalOf(() => validator.finish()),
      error,
    );
  });

  test("an unfinished line is held up to the cap plus one byte (a possible CR), not one byte more", () => {
    const cap = 64;
    const validator = createJsonlValidator({ maxLineBytes: cap });
    validator.push(enc.encode(`{"text":"${"a".repeat(cap + 1 - 9)}`)); // cap + 1 bytes, no newline yet
    const error = fatalOf(() => validator.push(enc.encode("a")));
    assert.equal(error.code, "line_too_long");
    assert.equal(error.line, 1);
  });

  test("a chunk is copied when buffered, so the caller may reuse its buffer", () => {
    const validator = createJsonlValidator({ maxLineBytes: CAP });
    const buffer = enc.encode('{"text":"ab');
    validator.push(buffer);
    buffer.fill(0x20);
    validator.push(enc.encode('c"}\n'));
    assert.equal(validator.finish().valid_examples, 1);
  });

  test("non-ASCII text: same verdicts as a UTF-8 decode, and messages quote it correctly", () => {
    const reference = (line: string): string => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        return "invalid_json";
      }
      if (typeof value !== "object" || value === null || Array.isArray(value)) return "not_an_object";
      const result = validateExample(value);
      return result.ok ? `ok:${result.example.format}` : result.code;
    };
    const toolExample = (callId: string, answerId: string) =>
      `{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"${callId}","type":"function","function":{"name":"f","arguments":"{\\"é\\":\\"\\u00e9\\"}"}}]},{"role":"tool","tool_call_id":"${answerId}","content":"ok"},{"role":"assistant","content":"done"}]}`;
    const lines = [
      '{"text":"é 漢字 🎉"}',
      '{"text":"\\u00e9"}',
      '{"text":"a"}\u00a0', // NBSP after the object: not JSON whitespace
      '\u00a0{"text":"a"}',
      '{"text":"\u2028"}',
      '{"tëxt":"a"}',
      '{"messages":[{"role":"usér","content":"x"},{"role":"assistant","content":"y"}]}',
      toolExample("é", "é"),
      toolExample("é", "\\u00e9"), // the same id, once escaped
      toolExample("é", "\\u00c3\\u00a9"), // the Latin-1 reading of é's bytes: a different id
    ];
    for (const line of lines) {
      let verdict: string;
      try {
        const summary = validateSplit(enc.encode(line), []);
        verdict = summary.valid_examples === 1 ? `ok:${summary.format}` : summary.errors[0]!.code;
      } catch (error) {
        verdict = (error as JsonlFatalError).code;
      }
      assert.equal(verdict, reference(line), line);
    }
    const summary = validateSplit(enc.encode(`${lines[6]}\n${lines[9]}\n`), []);
    assert.deepEqual(
      summary.errors.map((e) => e.message),
      [
        'messages[0].role must be one of system, developer, user, assistant, tool (got "usér")',
        'messages[2].tool_call_id "Ã©" matches no tool call of an earlier assistant message',
      ],
    );
    const error = fatalOf(() => validateSplit(enc.encode('{"text":"é",]'), []));
    // The position counts characters of the UTF-8 text (12), not bytes or Latin-1 chars (13).
    assert.match(error.message, /position 12$/);
  });

  test("rejects a nonsensical cap", () => {
    assert.throws(() => createJsonlValidator({ maxLineBytes: 0 }), /maxLineBytes must be a positive integer/);
  });
});
