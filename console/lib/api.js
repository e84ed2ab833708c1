// Calls to the public API (/v1) with the signed-in key. Failures become ApiError with OpenAI's
// envelope fields; a 401 means the key is no longer good, so the session ends with its message.
import { apiKey, signOut } from "./session.js";

export class ApiError extends Error {
  constructor(status, body, requestId) {
    const e = body?.error ?? {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code ?? null;
    this.param = e.param ?? null;
    this.type = e.type ?? null;
    this.requestId = requestId;
  }
}

export function authHeaders(key = apiKey()) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** Raw fetch of /v1{path}; throws ApiError for a non-2xx answer. */
export async function apiFetch(path, { method = "GET", body, headers = {}, signal, key } = {}) {
  const init = { method, signal, headers: { ...authHeaders(key), ...headers } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(`/v1${path}`, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, { error: { message: `The server cannot be reached (${err.message}).` } }, null);
  }
  if (!response.ok) throw await toApiError(response, key === undefined);
  return response;
}

export async function toApiError(response, endSessionOn401 = true) {
  const body = await response.json().catch(() => null);
  const error = new ApiError(response.status, body, response.headers.get("x-request-id"));
  if (response.status === 401 && endSessionOn401) signOut(`The API key was refused: ${error.message}`);
  return error;
}

/** JSON of /v1{path}. */
export async function api(path, opts) {
  return (await apiFetch(path, opts)).json();
}

/** Every item of a list endpoint, following `after` while has_more. */
export async function listAll(path, { limit = 100, signal } = {}) {
  const items = [];
  let after = null;
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(
      `${path}${sep}limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ""}`,
      {
        signal,
      },
    );
    items.push(...page.data);
    if (!page.has_more || page.data.length === 0) return items;
    after = page.data[page.data.length - 1].id;
  }
}

/** Downloads /v1{path} with the key (a plain link cannot send it) and saves it as `filename`. */
export async function download(path, filename) {
  const blob = await (await apiFetch(path)).blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

let spec = null;
/** Which documented extensions this server has (GET /openapi.json), e.g. hasPath("/fine_tuning/jobs/preflight"). */
export async function apiPaths() {
  // the key goes along in case the server keeps its document behind it
  spec ??= fetch("/openapi.json", { headers: authHeaders() })
    .then((r) => (r.ok ? r.json() : { paths: {} }))
    .catch(() => ({ paths: {} }));
  return new Set(Object.keys((await spec).paths ?? {}));
}
