// `Content-Disposition: attachment` for a download, per RFC 6266 with RFC 5987's `filename*`:
// an ASCII `filename` for old clients and the exact name, UTF-8 percent-encoded, for the rest.
// A header must be Latin-1 without control characters, so the raw name can never go in as is.

/** RFC 5987 attr-char: what `filename*` may carry unencoded. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** The name with everything outside printable ASCII, and `"`/`\`, replaced by `_`. */
export function asciiFilename(name: string): string {
  const ascii = [...name].map((c) => (/^[\x20-\x7e]$/.test(c) && c !== '"' && c !== "\\" ? c : "_")).join("");
  return ascii.trim() === "" ? "download" : ascii;
}

function encodeRfc5987(value: string): string {
  let out = "";
  for (const byte of Buffer.from(value.replace(LONE_SURROGATE, "\ufffd"), "utf8")) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && ATTR_CHAR.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

export function attachmentDisposition(filename: string): string {
  const fallback = asciiFilename(filename);
  const header = `attachment; filename="${fallback}"`;
  return fallback === filename ? header : `${header}; filename*=UTF-8''${encodeRfc5987(filename)}`;
}
