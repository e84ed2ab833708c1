// Where, in the text a chat template renders for a whole conversation, each trained assistant turn
// lies: from the end of its header (what `add_generation_prompt` adds, e.g.
// "<|start_header_id|>assistant<|end_header_id|>\n\n") to the end of the end-of-turn token the
// template closes it with ("<|eot_id|>", "<|im_end|>", "</s>"…). The newline some templates print
// after that token is not part of the span: a model never generates it.
//
// Any Jinja template, no per-model rules. For turn i we render the conversation before it with the
// generation prompt (G) and compare it with the full render (T):
//   - G is a prefix of T (Llama 3, ChatML, most templates): the header ends at |G|.
//   - G diverges from T only inside the generation prompt (e.g. Qwen3 with enable_thinking=false adds
//     an empty <think></think> that T lacks for a non-final turn): the header ends where they diverge.
//   - G diverges earlier, because the template renders a message differently when it is the last one
//     (Qwen3 gives the final assistant turn an empty <think> block, so two assistant turns in a row
//     change the earlier one): we look for the generation prompt text in T after that point.
// The span ends at the first stop token (eos, generation_config eos ids, known end-of-turn specials)
// at or after the header. User text cannot fake one: the caller renders with special-token text
// escaped (special-text-escaper.ts). A template that closes turns with no stop token: the span ends
// where the turn's own rendering ends (render up to turn i, compare with T), trailing whitespace off.
//
// Cost: one render per trained turn (two when G is not a prefix of T), each of the conversation so
// far, so quadratic in the number of turns. findSpansByHeader is the linear fast path for templates
// that allow it: when the generation prompt contains a special token (so only the template can have
// written it) and T holds it exactly once per assistant message, its occurrences are the headers.
// Callers check the fast path against the render path on a sample (build-dataset.ts).

export interface TrainedSpan {
  /** index of the assistant message */
  message: number;
  /** char offsets in the full rendered text: [start, end) */
  start: number;
  end: number;
}

export type RenderConversation = (messageCount: number, addGenerationPrompt: boolean) => string;

function commonPrefixLength(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** The end offset of the first stop string at or after `from`, or -1. */
function firstStopEnd(text: string, from: number, stops: readonly string[]): number {
  let best = -1;
  let bestEnd = -1;
  for (const stop of stops) {
    const at = text.indexOf(stop, from);
    if (at >= 0 && (best < 0 || at < best || (at === best && at + stop.length > bestEnd))) {
      best = at;
      bestEnd = at + stop.length;
    }
  }
  return bestEnd;
}

/**
 * @param render renders the first `messageCount` messages (escaped), with or without generation prompt
 * @param full   render(all messages, false)
 * @param trained ascending indices of the assistant messages to train
 * @param stops  the stop-token strings of the tokenizer
 */
export function findTrainedSpans(
  render: RenderConversation,
  full: string,
  trained: readonly number[],
  stops: readonly string[],
): TrainedSpan[] {
  const spans: TrainedSpan[] = [];
  let prevEnd = 0;
  for (const i of trained) {
    const withPrompt = render(i, true);
    let start = commonPrefixLength(withPrompt, full);
    if (start < withPrompt.length || start < prevEnd) {
      const before = render(i, false);
      const beforeShared = commonPrefixLength(before, full);
      const promptOnlyDiverges = beforeShared === before.length && start >= before.length && start >= prevEnd;
      if (!promptOnlyDiverges) {
        const prompt = withPrompt.slice(commonPrefixLength(withPrompt, before));
        const from = Math.max(prevEnd, Math.min(beforeShared, start));
        const at = prompt.length ? full.indexOf(prompt, from) : -1;
        if (at < 0) {
          throw new Error(
            `message ${i}: cannot locate the assistant header in the rendered conversation ` +
              "(the template renders earlier turns differently once this turn follows)",
          );
        }
        start = at + prompt.length;
      }
    }
    let end = firstStopEnd(full, start, stops);
    if (end < 0) {
      const upTo = render(i + 1, false);
      end = commonPrefixLength(upTo, full);
      while (end > start && /\s/.test(full[end - 1])) end--;
    }
    if (end <= start) {
      throw new Error(`message ${i}: the assistant turn renders to nothing the model could learn`);
    }
    spans.push({ message: i, start, end });
    prevEnd = end;
  }
  return spans;
}

/**
 * The text `add_generation_prompt` appends, probed on a one-message conversation; null when the
 * template fails on it or the prompt is not a plain suffix.
 */
export function probeGenerationPrompt(
  render: (messages: { role: string; content: string }[], addGenerationPrompt: boolean) => string,
): string | null {
  try {
    const probe = [{ role: "user", content: "x" }];
    const without = render(probe, false);
    const withPrompt = render(probe, true);
    if (!withPrompt.startsWith(without) || withPrompt.length === without.length) return null;
    return withPrompt.slice(without.length);
  } catch {
    return null;
  }
}

/**
 * Fast path: spans from the occurrences of the generation prompt `header` in `full`, one per assistant
 * message in order. Null when the occurrences do not line up with the assistant messages one to one,
 * or a turn has no stop token before the next header: the caller then uses findTrainedSpans.
 */
export function findSpansByHeader(
  full: string,
  assistantMessages: readonly number[],
  trained: readonly number[],
  header: string,
  stops: readonly string[],
): TrainedSpan[] | null {
  const starts: number[] = [];
  for (let at = full.indexOf(header); at >= 0; at = full.indexOf(header, at + header.length)) {
    starts.push(at + header.length);
  }
  if (starts.length !== assistantMessages.length) return null;
  const spans: TrainedSpan[] = [];
  for (const message of trained) {
    const k = assistantMessages.indexOf(message);
    if (k < 0) return null;
    const start = starts[k];
    const end = firstStopEnd(full, start, stops);
    if (end < 0 || (k + 1 < starts.length && end > starts[k + 1] - header.length)) return null;
    spans.push({ message, start, end });
  }
  return spans;
}
