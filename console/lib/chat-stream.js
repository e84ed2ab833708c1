// POST /v1/chat/completions with stream: true, calling onChunk({text, logprobs}) for each
// delta as it arrives. Resolves to {finishReason, usage}.
import { apiFetch } from "./api.js";
import { readEventStream } from "./sse.js";

export async function streamChat({ model, messages, temperature, maxTokens, logprobs, signal, onChunk }) {
  const body = {
    model,
    messages,
    stream: true,
    stream_options: { include_usage: true },
    temperature,
    max_completion_tokens: maxTokens,
  };
  if (logprobs) Object.assign(body, { logprobs: true, top_logprobs: 5 });
  const response = await apiFetch("/chat/completions", { method: "POST", body, signal });
  let finishReason = null;
  let usage = null;
  for await (const message of readEventStream(response)) {
    // read on to the end of the body after [DONE]: the server closes it, and a cancelled body would count as a failed request
    if (message.data === "[DONE]") continue;
    const chunk = JSON.parse(message.data);
    if (chunk.error) throw Object.assign(new Error(chunk.error.message), { status: 500 });
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    if (choice.finish_reason) finishReason = choice.finish_reason;
    const text = choice.delta?.content ?? "";
    const lp = choice.logprobs?.content ?? [];
    if (text || lp.length) onChunk({ text, logprobs: lp });
  }
  return { finishReason, usage };
}
