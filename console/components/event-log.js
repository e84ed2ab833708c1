// A job's event log, newest first, growing live. Long runs have one metrics event per step, so
// only the newest SHOWN are drawn until asked for all.
import { useState } from "preact/hooks";
import { formatTime } from "../lib/format.js";
import { html } from "../lib/html.js";

const SHOWN = 200;

export function EventLog({ events, state }) {
  const [all, setAll] = useState(false);
  const newestFirst = events.slice().reverse();
  const visible = all ? newestFirst : newestFirst.slice(0, SHOWN);
  return html`
    <section class="panel" aria-labelledby="events-title">
      <h2 id="events-title">Events <span class="muted small" data-stream-state=${state}>${state === "live" ? "● live" : state}</span></h2>
      ${events.length === 0 ? html`<p class="muted">No events yet.</p>` : null}
      <ol class="event-log" aria-live="polite" aria-relevant="additions">
        ${visible.map(
          (e) => html`<li key=${e.id} class=${`level-${e.level}`}>
            <time class="muted small">${formatTime(e.created_at)}</time>
            <span>${e.message}</span>
          </li>`,
        )}
      </ol>
      ${
        !all && events.length > SHOWN
          ? html`<button type="button" class="secondary" onClick=${() => setAll(true)}>Show all ${events.length} events</button>`
          : null
      }
    </section>
  `;
}
