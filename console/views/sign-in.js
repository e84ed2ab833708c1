// Sign-in with an API key. The key is checked with GET /v1/models before it is kept (in
// sessionStorage only); a refused key shows the server's message.
import { useState } from "preact/hooks";
import { ErrorBox } from "../components/error-box.js";
import { api } from "../lib/api.js";
import { html } from "../lib/html.js";
import { signIn, signInNotice } from "../lib/session.js";

export function SignIn() {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const notice = signInNotice();

  const submit = async (e) => {
    e.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) return setError({ status: 400, message: "Enter an API key." });
    setBusy(true);
    setError(null);
    try {
      await api("/models", { key: trimmed });
      signIn(trimmed);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return html`
    <main class="sign-in" id="main">
      <form onSubmit=${submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">tunehouse console</h1>
        <p class="muted">Sign in with an API key of this server. <code>npm start</code> prints one; it is also in <code>data/api-key</code>.</p>
        ${notice && !error ? html`<div class="notice" role="status">${notice}</div>` : null}
        <label for="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autocomplete="off" spellcheck="false" placeholder="sk-…"
          value=${key} onInput=${(e) => setKey(e.currentTarget.value)} autofocus />
        <button type="submit" disabled=${busy}>${busy ? "Checking…" : "Sign in"}</button>
        <${ErrorBox} error=${error} />
        <p class="small muted">The key is kept in this tab's session storage only, and sent to this server as a Bearer token.</p>
      </form>
    </main>
  `;
}
