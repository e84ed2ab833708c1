// A job's events as they happen: the whole history from the events list (newest first, paged
// to the start), then the live stream from the newest one seen (`Last-Event-ID`), so a reload
// mid-job shows everything and then continues. The stream reconnects if it drops.
import { useEffect, useState } from "preact/hooks";
import { apiFetch, listAll } from "./api.js";
import { readEventStream } from "./sse.js";

const FLUSH_MS = 200;
const RECONNECT_MS = 2000;

async function follow(jobId, { onEvents, onState, signal }) {
  const history = (
    await listAll(`/fine_tuning/jobs/${encodeURIComponent(jobId)}/events`, { limit: 1000, signal })
  ).reverse();
  onEvents(history);
  let lastId = history.length ? history[history.length - 1].id : null;
  for (;;) {
    onState("live");
    try {
      const response = await apiFetch(`/fine_tuning/jobs/${encodeURIComponent(jobId)}/events?stream=true`, {
        signal,
        headers: lastId ? { "Last-Event-ID": lastId } : {},
      });
      for await (const message of readEventStream(response)) {
        if (message.event === "done") {
          onState("done");
          return;
        }
        const event = JSON.parse(message.data);
        lastId = event.id;
        onEvents([event]);
      }
    } catch (err) {
      if (signal.aborted || (err.status && err.status !== 0 && err.status < 500)) throw err;
    }
    onState("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    if (signal.aborted) return;
  }
}

/** {events (oldest first), state: "loading" | "live" | "reconnecting" | "done", error} */
export function useJobEvents(jobId) {
  const [view, setView] = useState({ events: [], state: "loading", error: null });
  useEffect(() => {
    const controller = new AbortController();
    let pending = [];
    let timer = null;
    const flush = () => {
      timer = null;
      const add = pending;
      pending = [];
      setView((v) => ({ ...v, events: v.events.concat(add) }));
    };
    setView({ events: [], state: "loading", error: null });
    follow(jobId, {
      signal: controller.signal,
      onEvents: (events) => {
        pending.push(...events);
        timer ??= setTimeout(flush, FLUSH_MS);
      },
      onState: (state) => setView((v) => ({ ...v, state })),
    }).catch((error) => {
      if (!controller.signal.aborted) setView((v) => ({ ...v, state: "done", error }));
    });
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [jobId]);
  return view;
}
