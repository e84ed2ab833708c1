// Streaming validation of a fine-tuning JSONL file while its bytes arrive (Files and Uploads
// APIs). Chunks may split anywhere, even inside a UTF-8 sequence; only the current unfinished
// line is buffered, and never more than maxLineBytes of it, so memory stays flat whatever the
// file size.
//
// Two kinds of problems, as OpenAI has them: a file that is not JSONL at all (bad UTF-8, a
// line that is not JSON, a JSON value that is not an object, a line over the cap) is refused
// at upload, so push()/finish() throw JsonlFatalError naming the line; a line that is a JSON
// object but not a valid training example is counted and the first maxErrors are recorded,
// and the file is still stored (its problems are reported when a job uses it).
//
// Speed: the newline search is Uint8Array#indexOf (native memchr), the UTF-8 check is
// buffer.isUtf8 (native, SIMD), JSON.parse reads the line as Latin-1 (see handleLine), and the
// rest is validateExample.
import { isAscii, isUtf8 } from "node:buffer";
import type { Example, ExampleFormat } from "../../worker/engine/data/example.js";
import { validateExample } from "../../worker/engine/data/validate-example.js";

export interface JsonlProblem {
  line: number;
  code: string;
  message: string;
}

export interface JsonlSummary {
  format: "chat" | "preference" | "prompt_completion" | "text" | "mixed" | null; // null = no examples
  examples: number;
  valid_examples: number;
  invalid_examples: number;
  errors: JsonlProblem[]; // the first N (maxErrors, default 20) schema problems, 1-based line numbers
}

/** thrown by push()/finish() when the file is not JSONL at all: refuse the upload with 400 naming the line */
export class JsonlFatalError extends Error {
  readonly line: number;
  readonly code: string;
  constructor(line: number, code: string, message: string) {
    super(message);
    this.name = "JsonlFatalError";
    this.line = line;
    this.code = code;
  }
}

export interface JsonlValidator {
  push(chunk: Uint8Array): void;
  finish(): JsonlSummary;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const OPEN_BRACE = 0x7b;
const JSONL_EXPECTATION = "Expected file to have JSONL format, where every line is a JSON object.";

export function createJsonlValidator(opts: { maxLineBytes: number; maxErrors?: number }): JsonlValidator {
  const maxLineBytes = opts.maxLineBytes;
  const maxErrors = opts.maxErrors ?? 20;
  if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) {
    throw new RangeError(
      `createJsonlValidator: maxLineBytes must be a positive integer (got ${maxLineBytes})`,
    );
  }
  if (!Number.isSafeInteger(maxErrors) || maxErrors < 0) {
    throw new RangeError(`createJsonlValidator: maxErrors must be a non-negative integer (got ${maxErrors})`);
  }

  // The unfinished line: copies of the bytes seen since the last newline.
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let linesDone = 0;
  let failure: JsonlFatalError | undefined;
  let finished = false;

  let examples = 0;
  let validExamples = 0;
  const errors: JsonlProblem[] = [];
  const formats = new Set<ExampleFormat>();

  function fatal(line: number, code: string, message: string): never {
    failure = new JsonlFatalError(line, code, message);
    throw failure;
  }

  function tooLong(line: number): never {
    fatal(
      line,
      "line_too_long",
      `Line ${line} is longer than the maximum line length of ${maxLineBytes} bytes.`,
    );
  }

  /** One complete line, without its "\n". */
  function handleLine(bytes: Uint8Array): void {
    const line = ++linesDone;
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === CARRIAGE_RETURN) end--;
    if (end > maxLineBytes) tooLong(line);
    if (end === 0) return;

    // A UTF-8 BOM (EF BB BF) is accepted at the very start of the file only.
    const from =
      line === 1 && end >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
    const view = Buffer.from(bytes.buffer, bytes.byteOffset + from, end - from);
    if (!isUtf8(view)) {
      fatal(line, "invalid_utf8", `Line ${line} is not valid UTF-8: training files must be UTF-8 encoded.`);
    }
    // Fast path: parse the line read as Latin-1 (one char per byte, a plain copy) instead of
    // transcoding UTF-8, which halves the CPU per byte. For valid UTF-8 this accepts exactly
    // what a UTF-8 decode would: JSON's syntax is ASCII, bytes >= 0x80 can only sit inside
    // strings, where any char >= U+0020 is allowed, and emptiness and comparisons with our
    // ASCII keywords come out the same. The UTF-8 text is used where the two can differ: error
    // messages (they quote the user's text) and tool_call_id equality (see below).
    const text = view.toString("latin1");
    // Blank lines (spaces/tabs only) are skipped; the first-character test keeps this off the hot path.
    if (text.charCodeAt(0) !== OPEN_BRACE && /^[ \t]*$/.test(text)) return;

    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      fatal(
        line,
        "invalid_json",
        `${JSONL_EXPECTATION} Line ${line} is not valid JSON: ${jsonErrorOf(view)}`,
      );
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      fatal(
        line,
        "not_an_object",
        `Expected file to have JSONL format, where every line is a JSON dictionary. Line ${line} is not a dictionary (got ${
          value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`
        }).`,
      );
    }

    examples++;
    let result = validateExample(value);
    // Redo from the UTF-8 text when the Latin-1 reading could mislead: a problem's message
    // quotes user text, and a raw "é" equals an escaped "\u00c3\u00a9" in Latin-1, which
    // matters only where two user strings are compared (tool_call_id against tool call ids).
    if ((!result.ok || hasToolMessage(result.example)) && !isAscii(view)) {
      result = validateExample(JSON.parse(view.toString("utf8")));
    }
    if (result.ok) {
      validExamples++;
      formats.add(result.example.format);
    } else if (errors.length < maxErrors) {
      errors.push({ line, code: result.code, message: result.message });
    }
  }

  function takePending(tail: Uint8Array): Uint8Array {
    if (pendingBytes === 0) return tail;
    const line = new Uint8Array(pendingBytes + tail.length);
    let offset = 0;
    for (const part of pending) {
      line.set(part, offset);
      offset += part.length;
    }
    line.set(tail, offset);
    pending = [];
    pendingBytes = 0;
    return line;
  }

  return {
    push(chunk: Uint8Array): void {
      if (failure) throw failure;
      if (finished) throw new Error("JSONL validator: push() called after finish()");
      let start = 0;
      while (start < chunk.length) {
        const newline = chunk.indexOf(NEWLINE, start);
        if (newline === -1) {
          // One byte of slack for a "\r" that a following "\n" would turn into a CRLF ending.
          if (pendingBytes + (chunk.length - start) > maxLineBytes + 1) tooLong(linesDone + 1);
          pending.push(chunk.slice(start)); // a copy: the caller may reuse its buffer
          pendingBytes += chunk.length - start;
          return;
        }
        if (pendingBytes + (newline - start) > maxLineBytes + 1) tooLong(linesDone + 1);
        handleLine(takePending(chunk.subarray(start, newline)));
        start = newline + 1;
      }
    },

    finish(): JsonlSummary {
      if (failure) throw failure;
      if (!finished) {
        finished = true;
        if (pendingBytes > 0) handleLine(takePending(new Uint8Array(0)));
      }
      return {
        format: formats.size === 0 ? null : formats.size === 1 ? [...formats][0]! : "mixed",
        examples,
        valid_examples: validExamples,
        invalid_examples: examples - validExamples,
        errors: errors.slice(),
      };
    },
  };
}

/** The parser's reason for a line that is not JSON, from its UTF-8 text so that it quotes it right. */
function jsonErrorOf(view: Buffer): string {
  try {
    JSON.parse(view.toString("utf8"));
    return "unexpected input";
  } catch (error) {
    return shorten((error as Error).message, 200);
  }
}

function hasToolMessage(example: Example): boolean {
  const messages =
    example.format === "chat"
      ? example.example.messages
      : example.format === "preference"
        ? example.example.input.messages
        : [];
  return messages.some((m) => m.role === "tool");
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
