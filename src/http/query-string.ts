// qs-style query parsing: the OpenAI SDKs send nested objects as `metadata[k]=v` (and arrays
// in brackets format), which Node's querystring would leave as flat keys.
import qs from "qs";

export function parseQueryString(query: string): Record<string, unknown> {
  return qs.parse(query, { depth: 2, arrayLimit: 100, parameterLimit: 1000, allowPrototypes: false });
}
