// A chat example → token ids and labels (render → tokenize → mask; docs/training.md).
//
// 1. Render the whole conversation with the chat template, special-token text in messages escaped.
// 2. Find each trained assistant turn's span in that text (trained-spans.ts).
// 3. Cut the text at the span boundaries and tokenize piece by piece: template-emitted special tokens
//    become their ids, all other text (message content included) is tokenized with special-token
//    parsing off. Tokens of a trained span get labels = ids; everything else -100.
//
// Why cut at span boundaries: at inference the prompt ends at the assistant header and is tokenized
// alone, then the model generates from there; cutting the training text at the same place gives the
// same tokens. BPE cannot merge across a special token anyway, so the only place this can differ from
// tokenizing the whole rendered text at once is a header that ends in plain text followed by content
// that starts with whitespace (e.g. "…assistant\n" + "\nHi"): we keep the cut (inference-faithful).
// Otherwise ids equal tokenizer.encode(rendered text) exactly (tested on Llama 3 and Qwen3).

import type { ChatTemplate } from "../hf/chat-template.js";
import { prepareMessagesForTemplate } from "../hf/chat-template.js";
import type { HfTokenizer } from "../hf/tokenizer.js";
import { IGNORE_INDEX } from "./batch.js";
import type { ChatMessage, FunctionTool } from "./example.js";
import { createSpecialTextEscaper, type SpecialTextEscaper } from "./special-text-escaper.js";
import { findSpansByHeader, findTrainedSpans, probeGenerationPrompt } from "./trained-spans.js";

export interface EncodedSequence {
  inputIds: Int32Array;
  /** ids where trained, IGNORE_INDEX elsewhere; not shifted (HF convention) */
  labels: Int32Array;
}

export interface EncodedChat extends EncodedSequence {
  /** the rendered text (what apply_chat_template gives) */
  text: string;
  /** token ranges [start, end) of the trained turns, in order */
  trainedTokenSpans: { message: number; start: number; end: number }[];
}

export interface ChatEncodeOptions {
  /** which messages to train; default: assistant messages whose weight is not 0 */
  trainMessage?: (message: ChatMessage, index: number) => boolean;
  /** extra template variables (e.g. { enable_thinking: false }) */
  templateKwargs?: Record<string, unknown>;
  /**
   * "auto" (default): the linear header search where the template allows it, else renders of each
   * turn's prefix; "render": always the prefix renders (the reference the fast path is checked against)
   */
  spanSearch?: "auto" | "render";
}

/** Per template and template kwargs: the generation prompt, if it contains a special token. */
const headerCache = new WeakMap<ChatTemplate, WeakMap<HfTokenizer, Map<string, string | null>>>();

function headerFor(
  template: ChatTemplate,
  tokenizer: HfTokenizer,
  kwargs?: Record<string, unknown>,
): string | null {
  let byTokenizer = headerCache.get(template);
  if (!byTokenizer) {
    byTokenizer = new WeakMap();
    headerCache.set(template, byTokenizer);
  }
  let byKwargs = byTokenizer.get(tokenizer);
  if (!byKwargs) {
    byKwargs = new Map();
    byTokenizer.set(tokenizer, byKwargs);
  }
  const key = JSON.stringify(kwargs ?? {});
  if (!byKwargs.has(key)) {
    const header = probeGenerationPrompt((messages, addGenerationPrompt) =>
      template.render({ messages, addGenerationPrompt, extra: kwargs }),
    );
    const hasSpecial = header !== null && tokenizer.splitOnSpecialTokens(header).some((s) => s.id !== null);
    byKwargs.set(key, hasSpecial ? header : null);
  }
  return byKwargs.get(key)!;
}

const escapers = new WeakMap<HfTokenizer, SpecialTextEscaper>();

/** The escaper for a tokenizer's special tokens, built once per tokenizer (training and chat share it). */
export function escaperFor(tokenizer: HfTokenizer): SpecialTextEscaper {
  let e = escapers.get(tokenizer);
  if (!e) {
    e = createSpecialTextEscaper(tokenizer.specialTokens.keys());
    escapers.set(tokenizer, e);
  }
  return e;
}

export function isTrainedAssistant(message: ChatMessage): boolean {
  return message.role === "assistant" && message.weight !== 0;
}

/**
 * Tokenize text rendered from escaped messages: special tokens in it are the template's own; the
 * text between them is unescaped and tokenized with special-token parsing off.
 */
export function encodeRenderedText(
  tokenizer: HfTokenizer,
  escaper: SpecialTextEscaper,
  text: string,
  atStart: boolean,
  out: number[],
): void {
  const sections = tokenizer.splitOnSpecialTokens(text);
  for (let k = 0; k < sections.length; k++) {
    const s = sections[k];
    if (s.id !== null) out.push(s.id);
    else if (s.text.length) {
      const ids = tokenizer.encode(escaper.unescape(s.text), {
        parseSpecial: false,
        atStart: atStart && k === 0,
      });
      for (const id of ids) out.push(id);
    }
  }
}

export function encodeChat(
  messages: readonly ChatMessage[],
  tools: readonly FunctionTool[] | undefined,
  tokenizer: HfTokenizer,
  template: ChatTemplate,
  opts: ChatEncodeOptions = {},
): EncodedChat {
  const escaper = escaperFor(tokenizer);
  const trainMessage = opts.trainMessage ?? isTrainedAssistant;
  const prepared = escaper.escapeDeep(prepareMessagesForTemplate(messages));
  const escapedTools = tools?.length ? escaper.escapeDeep(tools) : null;
  const render = (count: number, addGenerationPrompt: boolean) =>
    template.render({
      messages: prepared.slice(0, count),
      tools: escapedTools,
      addGenerationPrompt,
      extra: opts.templateKwargs,
    });

  const full = render(prepared.length, false);
  const trained: number[] = [];
  messages.forEach((m, i) => {
    if (trainMessage(m, i)) trained.push(i);
  });
  const header =
    (opts.spanSearch ?? "auto") === "auto" ? headerFor(template, tokenizer, opts.templateKwargs) : null;
  const assistants = messages.flatMap((m, i) => (m.role === "assistant" ? [i] : []));
  const spans =
    (header !== null && findSpansByHeader(full, assistants, trained, header, tokenizer.stopTokens)) ||
    findTrainedSpans(render, full, trained, tokenizer.stopTokens);

  const ids: number[] = [];
  const labels: number[] = [];
  const trainedTokenSpans: EncodedChat["trainedTokenSpans"] = [];
  let at = 0;
  const emit = (end: number, train: boolean) => {
    if (end <= at) return;
    const first = ids.length;
    encodeRenderedText(tokenizer, escaper, full.slice(at, end), at === 0, ids);
    for (let k = first; k < ids.length; k++) labels.push(train ? ids[k] : IGNORE_INDEX);
    at = end;
    return first;
  };
  for (const span of spans) {
    emit(span.start, false);
    const first = ids.length;
    emit(span.end, true);
    trainedTokenSpans.push({ message: span.message, start: first, end: ids.length });
  }
  emit(full.length, false);

  const text = escaper.unescape(full);
  if (text !== full) {
    // Escaping must not change what the template renders (it could if a template inspected special
    // token text inside message content); check against the plain render when it was needed.
    const plain = template.render({ messages, tools: tools ?? null, extra: opts.templateKwargs });
    if (plain !== text) {
      throw new Error(
        "the chat template treats special-token text inside messages specially; cannot mask it safely",
      );
    }
  }
  return { inputIds: Int32Array.from(ids), labels: Int32Array.from(labels), text, trainedTokenSpans };
}
