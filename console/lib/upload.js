// Uploads a File with progress: small files in one POST /v1/files, larger ones through the
// Uploads API in parts (several at once), with the md5 of the whole file checked at complete.
// XMLHttpRequest, not fetch, because only it reports upload progress.
import { ApiError, authHeaders } from "./api.js";
import { Md5 } from "./md5.js";
import { signOut } from "./session.js";

export const PART_BYTES = 8 * 1024 * 1024;
const PARALLEL_PARTS = 3;

function send(method, path, body, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, `/v1${path}`);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    if (!(body instanceof FormData) && body !== undefined)
      xhr.setRequestHeader("Content-Type", "application/json");
    xhr.upload.onprogress = (e) => onProgress?.(e.loaded);
    xhr.onload = () => {
      let json = null;
      try {
        json = JSON.parse(xhr.responseText);
      } catch {}
      if (xhr.status >= 200 && xhr.status < 300) return resolve(json);
      const error = new ApiError(xhr.status, json, xhr.getResponseHeader("x-request-id"));
      if (xhr.status === 401) signOut(`The API key was refused: ${error.message}`);
      reject(error);
    };
    xhr.onerror = () =>
      reject(new ApiError(0, { error: { message: "The upload was cut off (network error)." } }, null));
    xhr.onabort = () => reject(new DOMException("Upload cancelled", "AbortError"));
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(body instanceof FormData || body === undefined ? body : JSON.stringify(body));
  });
}

/**
 * Uploads `file` with `purpose`; onProgress(sentBytes, totalBytes). Resolves to the File object.
 * Files above `partBytes` go through /v1/uploads.
 */
export async function uploadFile(file, purpose, { onProgress, signal, partBytes = PART_BYTES } = {}) {
  if (file.size <= partBytes) {
    const form = new FormData();
    form.append("purpose", purpose);
    form.append("file", file, file.name);
    return send("POST", "/files", form, (sent) => onProgress?.(Math.min(sent, file.size), file.size), signal);
  }
  const upload = await send(
    "POST",
    "/uploads",
    { filename: file.name, purpose, bytes: file.size, mime_type: file.type || "application/jsonl" },
    null,
    signal,
  );
  const parts = Math.ceil(file.size / partBytes);
  const sent = new Array(parts).fill(0);
  const ids = new Array(parts);
  const md5 = new Md5();
  let nextToHash = 0;
  const hashed = new Map();
  let next = 0;
  try {
    const worker = async () => {
      while (next < parts) {
        const i = next++;
        const blob = file.slice(i * partBytes, Math.min(file.size, (i + 1) * partBytes));
        // md5 runs over the parts in order; a part read early waits in `hashed` for its turn
        hashed.set(i, new Uint8Array(await blob.arrayBuffer()));
        while (hashed.has(nextToHash)) {
          md5.update(hashed.get(nextToHash));
          hashed.delete(nextToHash++);
        }
        const form = new FormData();
        form.append("data", blob, `part-${i}`);
        const part = await send(
          "POST",
          `/uploads/${upload.id}/parts`,
          form,
          (n) => {
            sent[i] = Math.min(n, blob.size);
            onProgress?.(
              sent.reduce((a, b) => a + b, 0),
              file.size,
            );
          },
          signal,
        );
        ids[i] = part.id;
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, parts) }, worker));
    const done = await send(
      "POST",
      `/uploads/${upload.id}/complete`,
      { part_ids: ids, md5: md5.hex() },
      null,
      signal,
    );
    return done.file;
  } catch (err) {
    send("POST", `/uploads/${upload.id}/cancel`).catch(() => {});
    throw err;
  }
}
