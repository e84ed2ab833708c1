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
// Speed: the newline search is Buffer#indexOf (native memchr), the UTF-8 check is one
// buffer.isUtf8 call per chunk (native, SIMD), JSON.parse reads each line as Latin-1 (see
// handleLine), and the rest is validateExample.
import { isAscii, isUtf8 } from "node:buffer";
import type { Example, ExampleFormat } from "./example.js";
import { validateExample } from "./validate-example.js";

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
  let pending: Buffer[] = [];
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

  /**
   * One complete line: bytes [start, end) of `buf`, without its "\n". `utf8Checked`: the
   * caller already knows these bytes are valid UTF-8 (it checked the whole chunk at once).
   */
  function handleLine(buf: Buffer, start: number, end: number, utf8Checked: boolean): void {
    const line = ++linesDone;
    if (end > start && buf[end - 1] === CARRIAGE_RETURN) end--;
    if (end - start > maxLineBytes) tooLong(line);
    if (end === start) return;
    // A UTF-8 BOM (EF BB BF) is accepted at the very start of the file only.
    if (
      line === 1 &&
      end - start >= 3 &&
      buf[start] === 0xef &&
      buf[start + 1] === 0xbb &&
      buf[start + 2] === 0xbf
    ) {
      start += 3;
    }
    if (!utf8Checked && !isUtf8(buf.subarray(start, end))) {
      fatal(line, "invalid_utf8", `Line ${line} is not valid UTF-8: training files must be UTF-8 encoded.`);
    }
    // Fast path: parse the line read as Latin-1 (one char per byte, a plain copy) instead of
    // transcoding UTF-8, which halves the CPU per byte. For valid UTF-8 this accepts exactly
    // what a UTF-8 decode would: JSON's syntax is ASCII, bytes >= 0x80 can only sit inside
    // strings, where any char >= U+0020 is allowed, and emptiness and comparisons with our
    // ASCII keywords come out the same. The UTF-8 text is used where the two can differ: error
    // messages (they quote the user's text) and tool_call_id equality (see below).
    const text = buf.toString("latin1", start, end);
    // Blank lines (spaces/tabs only) are skipped; the first-character test keeps this off the hot path.
    if (text.charCodeAt(0) !== OPEN_BRACE && /^[ \t]*$/.test(text)) return;

    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      const reason = jsonErrorOf(buf.toString("utf8", start, end));
      fatal(line, "invalid_json", `${JSONL_EXPECTATION} Line ${line} is not valid JSON: ${reason}`);
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
    if ((!result.ok || hasToolMessage(result.example)) && !isAscii(buf.subarray(start, end))) {
      result = validateExample(JSON.parse(buf.toString("utf8", start, end)));
    }
    if (result.ok) {
      validExamples++;
      formats.add(result.example.format);
    } else if (errors.length < maxErrors) {
      errors.push({ line, code: result.code, message: result.message });
    }
  }

  /** Keeps a copy of the unfinished line's bytes (the caller may reuse its buffer), within the cap. */
  function keepPending(buf: Buffer, from: number): void {
    // One byte of slack for a "\r" that a following "\n" would turn into a CRLF ending.
    if (pendingBytes + (buf.length - from) > maxLineBytes + 1) tooLong(linesDone + 1);
    pending.push(Buffer.from(buf.subarray(from)));
    pendingBytes += buf.length - from;
  }

  function takePending(tail: Buffer): Buffer {
    const line = Buffer.concat([...pending, tail], pendingBytes + tail.length);
    pending = [];
    pendingBytes = 0;
    return line;
  }

  return {
    push(chunk: Uint8Array): void {
      if (failure) throw failure;
      if (finished) throw new Error("JSONL validator: push() called after finish()");
      const buf = Buffer.isBuffer(chunk)
        ? chunk
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      const firstNewline = buf.indexOf(NEWLINE);
      if (firstNewline === -1) {
        keepPending(buf, 0);
        return;
      }
      let start = 0;
      if (pendingBytes > 0) {
        if (pendingBytes + firstNewline > maxLineBytes + 1) tooLong(linesDone + 1);
        const line = takePending(buf.subarray(0, firstNewline));
        handleLine(line, 0, line.length, false);
        start = firstNewline + 1;
      }
      // One native UTF-8 check covers every complete line of the chunk (a newline cannot sit
      // inside a multi-byte sequence, so the lines are valid exactly when the span is); only
      // when it fails does each line check itself, to name the first bad one.
      const lastNewline = buf.lastIndexOf(NEWLINE);
      const spanIsUtf8 = start >= lastNewline || isUtf8(buf.subarray(start, lastNewline));
      while (start <= lastNewline) {
        const newline = buf.indexOf(NEWLINE, start);
        handleLine(buf, start, newline, spanIsUtf8);
        start = newline + 1;
      }
      if (start < buf.length) keepPending(buf, start);
    },

    finish(): JsonlSummary {
      if (failure) throw failure;
      if (!finished) {
        finished = true;
        if (pendingBytes > 0) {
          const line = takePending(Buffer.alloc(0));
          handleLine(line, 0, line.length, false);
        }
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
function jsonErrorOf(text: string): string {
  try {
    JSON.parse(text);
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
