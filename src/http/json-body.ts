// JSON request bodies: parsed with a cap on nesting, so a body like `[[[[…]]]]` 20,000 deep is
// a 400 instead of a stack overflow in whatever walks it next (validation, input checks).
import { badRequest } from "./api-error.js";
import { rootPlugin } from "./root-plugin.js";

export const MAX_JSON_DEPTH = 64;

/** The deepest nesting of arrays/objects in JSON text (strings skipped), stopping past `limit`. */
export function jsonDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) max = depth;
      if (max > limit) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** The body's value; undefined for an empty body (some clients send JSON content-type on POSTs without one). */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === "") return undefined;
  if (jsonDepth(text) > MAX_JSON_DEPTH) {
    throw badRequest(
      `The JSON body is nested more than ${MAX_JSON_DEPTH} levels deep.`,
      null,
      "invalid_json",
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(
      `We could not parse the JSON body of your request: ${(err as Error).message}`,
      null,
      "invalid_json",
    );
  }
}

/**
 * The app's JSON parser. Some clients send `Content-Type: application/json` with an empty body
 * on POSTs that take none (cancel): that is no body instead of a failed parse.
 */
export const jsonBody = rootPlugin(async (app) => {
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(String(body)));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
});
