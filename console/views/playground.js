// The playground: chat with any model, streamed; side by side, two models (the base and the
// tuned model, or two checkpoints) answer the same prompt at once. Temperature, max tokens,
// system prompt, and token logprobs on hover. ?a=MODEL&b=MODEL picks the models.
import { useEffect, useRef, useState } from "preact/hooks";
import { ChatPane } from "../components/chat-pane.js";
import { ErrorBox } from "../components/error-box.js";
import { api } from "../lib/api.js";
import { streamChat } from "../lib/chat-stream.js";
import { html } from "../lib/html.js";
import { useApi } from "../lib/use-api.js";

function messagesFor(system, turns, prompt) {
  const messages = system.trim() ? [{ role: "system", content: system }] : [];
  for (const t of turns) {
    messages.push({ role: "user", content: t.user });
    if (t.reply.text) messages.push({ role: "assistant", content: t.reply.text });
  }
  messages.push({ role: "user", content: prompt });
  return messages;
}

export function Playground({ query }) {
  const models = useApi((signal) => api("/models", { signal }).then((r) => r.data.map((m) => m.id)), []);
  const [compare, setCompare] = useState(query.has("b") || !query.has("a"));
  const [picked, setPicked] = useState([query.get("a") ?? "", query.get("b") ?? ""]);
  const [settings, setSettings] = useState({ system: "", temperature: 0.7, maxTokens: 128, logprobs: true });
  const [prompt, setPrompt] = useState("");
  const [panes, setPanes] = useState([
    { turns: [], state: "idle" },
    { turns: [], state: "idle" },
  ]);
  const controllers = useRef([]);
  const abortAll = () => {
    for (const c of controllers.current) c?.abort();
  };

  useEffect(() => {
    setPicked([query.get("a") ?? "", query.get("b") ?? ""]);
    if (query.has("b")) setCompare(true);
  }, [query.toString()]);
  useEffect(() => {
    const list = models.data;
    if (!list?.length) return;
    // default picks: the first base model, then the newest tuned one
    const base = list.find((m) => !m.startsWith("ft:")) ?? list[0];
    const tuned = [...list].reverse().find((m) => m.startsWith("ft:") && !m.includes(":ckpt-step-")) ?? base;
    setPicked((p) => [p[0] || base, p[1] || tuned]);
  }, [models.data]);
  useEffect(() => abortAll, []);

  const active = compare ? [0, 1] : [0];
  const streaming = panes.some((p) => p.state === "streaming");
  const updatePane = (i, fn) => setPanes((ps) => ps.map((p, j) => (j === i ? fn(p) : p)));
  const updateReply = (i, fn) =>
    updatePane(i, (p) => {
      const turns = p.turns.slice();
      turns[turns.length - 1] = { ...turns[turns.length - 1], reply: fn(turns[turns.length - 1].reply) };
      return { ...p, turns };
    });

  const send = (e) => {
    e?.preventDefault();
    const text = prompt.trim();
    if (!text || streaming) return;
    setPrompt("");
    for (const i of active) {
      const model = picked[i];
      const messages = messagesFor(settings.system, panes[i].turns, text);
      const controller = new AbortController();
      controllers.current[i] = controller;
      const started = performance.now();
      updatePane(i, (p) => ({
        state: "streaming",
        turns: [
          ...p.turns,
          { user: text, reply: { text: "", tokens: [], chunks: 0, streaming: true, error: null } },
        ],
      }));
      streamChat({
        model,
        messages,
        temperature: Number(settings.temperature),
        maxTokens: Number(settings.maxTokens),
        logprobs: settings.logprobs,
        signal: controller.signal,
        onChunk: ({ text: t, logprobs }) =>
          updateReply(i, (r) => ({
            ...r,
            text: r.text + t,
            tokens: r.tokens.concat(logprobs),
            chunks: r.chunks + 1,
          })),
      }).then(
        ({ finishReason, usage }) => {
          updateReply(i, (r) => ({
            ...r,
            streaming: false,
            finishReason,
            usage,
            seconds: (performance.now() - started) / 1000,
          }));
          updatePane(i, (p) => ({ ...p, state: "done" }));
        },
        (error) => {
          const stopped = error.name === "AbortError";
          updateReply(i, (r) => ({
            ...r,
            streaming: false,
            error: stopped ? null : error,
            finishReason: stopped ? "stopped" : null,
          }));
          updatePane(i, (p) => ({ ...p, state: stopped ? "done" : "error" }));
        },
      );
    }
  };

  const list = models.data ?? [];
  return html`
    <section class="playground">
      <div class="page-head">
        <h1>Playground</h1>
        <label class="check"><input type="checkbox" checked=${compare} onChange=${(e) => setCompare(e.currentTarget.checked)} disabled=${streaming} /> Side by side</label>
      </div>
      <${ErrorBox} error=${models.error} onRetry=${models.reload} />
      <details class="settings" open>
        <summary>Settings</summary>
        <div class="grid">
          <label class="wide">System prompt
            <textarea rows="2" value=${settings.system} onInput=${(e) => setSettings({ ...settings, system: e.currentTarget.value })}></textarea>
          </label>
          <label>Temperature <span class="small muted">${settings.temperature}</span>
            <input type="range" min="0" max="2" step="0.1" value=${settings.temperature}
              onInput=${(e) => setSettings({ ...settings, temperature: e.currentTarget.value })} />
          </label>
          <label>Max tokens
            <input type="number" min="1" max="4096" value=${settings.maxTokens} onInput=${(e) => setSettings({ ...settings, maxTokens: e.currentTarget.value })} />
          </label>
          <label class="check"><input type="checkbox" checked=${settings.logprobs} onChange=${(e) => setSettings({ ...settings, logprobs: e.currentTarget.checked })} /> Token logprobs (hover a token)</label>
        </div>
      </details>
      <div class=${compare ? "panes two" : "panes"}>
        ${active.map(
          (
            i,
          ) => html`<${ChatPane} key=${i} index=${i} model=${picked[i]} models=${list} turns=${panes[i].turns} state=${panes[i].state}
            onModel=${(m) => setPicked((p) => p.map((x, j) => (j === i ? m : x)))} />`,
        )}
      </div>
      <form class="prompt" onSubmit=${send}>
        <label for="prompt" class="visually-hidden">Message</label>
        <textarea id="prompt" rows="2" placeholder="Ask something… (Enter sends, Shift+Enter for a new line)" value=${prompt}
          onInput=${(e) => setPrompt(e.currentTarget.value)}
          onKeyDown=${(e) => {
            if (e.key === "Enter" && !e.shiftKey) send(e);
          }}></textarea>
        <div class="actions">
          ${
            streaming
              ? html`<button type="button" class="secondary" onClick=${() => abortAll()}>Stop</button>`
              : html`<button type="submit" disabled=${!prompt.trim() || active.some((i) => !picked[i])}>Send</button>`
          }
          <button type="button" class="secondary" disabled=${streaming}
            onClick=${() =>
              setPanes([
                { turns: [], state: "idle" },
                { turns: [], state: "idle" },
              ])}>Clear</button>
        </div>
      </form>
    </section>
  `;
}
