// Hash routes (#/jobs/ftjob-…): the server serves one page, and a reload keeps the view.
import { useEffect, useState } from "preact/hooks";

/** {path: ["jobs", "ftjob-…"], query: URLSearchParams} of the current hash. */
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const pathPart = q < 0 ? raw : raw.slice(0, q);
  return {
    path: pathPart.split("/").filter(Boolean).map(decodeURIComponent),
    query: new URLSearchParams(q < 0 ? "" : raw.slice(q + 1)),
  };
}

/** The current route; `seq` counts navigations, so following a link to the page shown reloads it. */
export function useRoute() {
  const [route, setRoute] = useState(() => ({ ...parseHash(), seq: 0 }));
  useEffect(() => {
    const update = () => setRoute((r) => ({ ...parseHash(), seq: r.seq + 1 }));
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}

/** "#/jobs/ftjob-1" from ("jobs", "ftjob-1"), with an optional query object. */
export function href(...parts) {
  const last = parts[parts.length - 1];
  const query = last && typeof last === "object" ? parts.pop() : null;
  const path = `#/${parts.map((p) => encodeURIComponent(p)).join("/")}`;
  if (!query) return path;
  const qs = new URLSearchParams(Object.entries(query).filter(([, v]) => v != null && v !== "")).toString();
  return qs ? `${path}?${qs}` : path;
}

export function navigate(to) {
  location.hash = to.replace(/^#/, "");
}
