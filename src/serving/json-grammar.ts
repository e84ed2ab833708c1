// JSON (and a JSON-Schema subset) as a byte automaton for constrained decoding: `step(state, byte)`
// says whether the byte can continue valid output and gives the next state; a state is an
// immutable stack of frames, and a byte inside a string returns the same state object, so a walk
// over the vocabulary's byte trie allocates only at structural bytes.
//
// Output is compact JSON: no whitespace except one optional space after ':' and ','. Objects with
// `properties` write their keys in the schema's order (as OpenAI's structured outputs do); a
// property not in `required` may be left out; no other keys are allowed.
//
// Supported JSON-Schema keywords (anything else is refused, naming it): type (one or a list),
// properties, required, additionalProperties (false, true or a schema; used only when there are
// no properties), items, enum, const, anyOf (options that start differently: e.g. string | null),
// and the annotations title, description, default, examples, $schema, $id, $comment.

export type SchemaNode =
  | { t: "any" }
  | { t: "object"; props: [string, SchemaNode][]; required: Set<string>; additional: SchemaNode | null }
  | { t: "array"; items: SchemaNode }
  | { t: "string" }
  | { t: "number"; integer: boolean }
  | { t: "boolean" }
  | { t: "null" }
  | { t: "literal"; texts: Uint8Array[] }
  | { t: "anyOf"; options: SchemaNode[] };

export const ANY_OBJECT: SchemaNode = {
  t: "object",
  props: [],
  required: new Set(),
  additional: { t: "any" },
};

const ANNOTATIONS = new Set(["title", "description", "default", "examples", "$schema", "$id", "$comment"]);
const STRUCTURE = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "enum",
  "const",
  "anyOf",
]);

export class UnsupportedSchemaError extends Error {
  constructor(
    readonly keywords: string[],
    readonly path: string,
  ) {
    super(
      `unsupported JSON-Schema keyword${keywords.length > 1 ? "s" : ""} ${keywords.map((k) => `'${k}'`).join(", ")} at ${path}`,
    );
  }
}

const bytesOf = (text: string) => new Uint8Array(Buffer.from(text, "utf8"));

/** The first byte class of a node's values, to keep anyOf options apart. */
function startClasses(node: SchemaNode): string[] {
  switch (node.t) {
    case "any":
      return ["{", "[", '"', "0", "t", "f", "n"];
    case "object":
      return ["{"];
    case "array":
      return ["["];
    case "string":
      return ['"'];
    case "number":
      return ["0"];
    case "boolean":
      return ["t", "f"];
    case "null":
      return ["n"];
    case "literal":
      return node.texts.map((t) =>
        t[0] === 0x22
          ? '"'
          : t[0] === 0x7b
            ? "{"
            : t[0] === 0x5b
              ? "["
              : /[-0-9]/.test(String.fromCharCode(t[0]))
                ? "0"
                : String.fromCharCode(t[0]),
      );
    case "anyOf":
      return node.options.flatMap(startClasses);
  }
}

/** A JSON-Schema object → the automaton's node; throws UnsupportedSchemaError naming what it cannot enforce. */
export function compileSchema(schema: unknown, path = "schema"): SchemaNode {
  if (schema === true || (schema && typeof schema === "object" && Object.keys(schema).length === 0))
    return { t: "any" };
  if (!schema || typeof schema !== "object" || Array.isArray(schema))
    throw new UnsupportedSchemaError(["(not an object)"], path);
  const s = schema as Record<string, unknown>;
  const unknown = Object.keys(s).filter((k) => !ANNOTATIONS.has(k) && !STRUCTURE.has(k));
  if (unknown.length > 0) throw new UnsupportedSchemaError(unknown, path);
  if (s.const !== undefined) return { t: "literal", texts: [bytesOf(JSON.stringify(s.const))] };
  if (Array.isArray(s.enum)) return { t: "literal", texts: s.enum.map((v) => bytesOf(JSON.stringify(v))) };
  if (Array.isArray(s.anyOf))
    return anyOf(
      s.anyOf.map((o, i) => compileSchema(o, `${path}.anyOf[${i}]`)),
      path,
    );
  const types = Array.isArray(s.type) ? s.type : s.type === undefined ? null : [s.type];
  if (types === null) {
    if (s.properties) return compileType("object", s, path);
    if (s.items) return compileType("array", s, path);
    return { t: "any" };
  }
  const nodes = types.map((t) => compileType(String(t), s, path));
  return nodes.length === 1 ? nodes[0] : anyOf(nodes, path);
}

function anyOf(options: SchemaNode[], path: string): SchemaNode {
  const seen = new Set<string>();
  for (const c of options.flatMap(startClasses)) {
    if (seen.has(c))
      throw new UnsupportedSchemaError(["anyOf (options that start alike, e.g. two objects)"], path);
    seen.add(c);
  }
  return { t: "anyOf", options };
}

function compileType(type: string, s: Record<string, unknown>, path: string): SchemaNode {
  switch (type) {
    case "object": {
      const properties = (s.properties ?? {}) as Record<string, unknown>;
      const props = Object.entries(properties).map(
        ([name, sub]) => [name, compileSchema(sub, `${path}.properties.${name}`)] as [string, SchemaNode],
      );
      const ap = s.additionalProperties;
      const additional =
        props.length > 0 || ap === false
          ? null
          : ap === undefined || ap === true
            ? { t: "any" as const }
            : compileSchema(ap, `${path}.additionalProperties`);
      return {
        t: "object",
        props,
        required: new Set((s.required as string[] | undefined) ?? []),
        additional,
      };
    }
    case "array":
      return {
        t: "array",
        items: s.items === undefined ? { t: "any" } : compileSchema(s.items, `${path}.items`),
      };
    case "string":
      return { t: "string" };
    case "number":
    case "integer":
      return { t: "number", integer: type === "integer" };
    case "boolean":
      return { t: "boolean" };
    case "null":
      return { t: "null" };
    default:
      throw new UnsupportedSchemaError([`type: ${JSON.stringify(type)}`], path);
  }
}

// ---- the automaton ------------------------------------------------------------------------

type Frame =
  | { k: "V"; n: SchemaNode }
  | { k: "S"; esc: number }
  | { k: "N"; integer: boolean; st: number; len: number }
  | { k: "L"; texts: Uint8Array[]; pos: number }
  | {
      k: "O";
      n: Extract<SchemaNode, { t: "object" }>;
      st: number;
      last: number;
      keys?: Uint8Array[];
      keyIdx?: number[];
      pos?: number;
      cur?: SchemaNode;
    }
  | { k: "A"; items: SchemaNode; st: number };

export type JsonState = readonly Frame[];

export function initialState(root: SchemaNode): JsonState {
  return [{ k: "V", n: root }];
}

const DONE = 1;
const STRING_FRAME: Frame = { k: "S", esc: 0 };
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
const MAX_NUMBER_LENGTH = 16;
const LITERALS = { t: bytesOf("true"), f: bytesOf("false"), n: bytesOf("null") };

/** The frames a value becomes after its first byte `b`, or null. */
function startValue(n: SchemaNode, b: number): Frame[] | null {
  switch (n.t) {
    case "any":
      if (b === 0x7b)
        return [{ k: "O", n: ANY_OBJECT as Extract<SchemaNode, { t: "object" }>, st: 0, last: -1 }];
      if (b === 0x5b) return [{ k: "A", items: n, st: 0 }];
      if (b === 0x22) return [STRING_FRAME];
      if (b === 0x2d || isDigit(b)) return startValue({ t: "number", integer: false }, b);
      if (b === 0x74 || b === 0x66 || b === 0x6e)
        return [{ k: "L", texts: [b === 0x74 ? LITERALS.t : b === 0x66 ? LITERALS.f : LITERALS.n], pos: 1 }];
      return null;
    case "object":
      return b === 0x7b ? [{ k: "O", n, st: 0, last: -1 }] : null;
    case "array":
      return b === 0x5b ? [{ k: "A", items: n.items, st: 0 }] : null;
    case "string":
      return b === 0x22 ? [STRING_FRAME] : null;
    case "number":
      if (b === 0x2d) return [{ k: "N", integer: n.integer, st: 0, len: 1 }];
      if (b === 0x30) return [{ k: "N", integer: n.integer, st: 1, len: 1 }];
      if (isDigit(b)) return [{ k: "N", integer: n.integer, st: 2, len: 1 }];
      return null;
    case "boolean":
      return b === 0x74
        ? [{ k: "L", texts: [LITERALS.t], pos: 1 }]
        : b === 0x66
          ? [{ k: "L", texts: [LITERALS.f], pos: 1 }]
          : null;
    case "null":
      return b === 0x6e ? [{ k: "L", texts: [LITERALS.n], pos: 1 }] : null;
    case "literal": {
      const texts = n.texts.filter((t) => t[0] === b);
      if (texts.length === 0) return null;
      return texts.every((t) => t.length === 1) ? [] : [{ k: "L", texts, pos: 1 }];
    }
    case "anyOf":
      for (const o of n.options) {
        const f = startValue(o, b);
        if (f) return f;
      }
      return null;
  }
}

/** Indices of the properties that may come next, after property `last`. */
function nextKeys(n: Extract<SchemaNode, { t: "object" }>, last: number): number[] {
  const out: number[] = [];
  for (let i = last + 1; i < n.props.length; i++) {
    out.push(i);
    if (n.required.has(n.props[i][0])) break;
  }
  return out;
}

function mayClose(n: Extract<SchemaNode, { t: "object" }>, last: number): boolean {
  for (let i = last + 1; i < n.props.length; i++) if (n.required.has(n.props[i][0])) return false;
  return true;
}

/** One frame and one byte: the frames replacing it (consumed), DONE (it ended before b), or null. */
function stepFrame(f: Frame, b: number): Frame[] | typeof DONE | null {
  switch (f.k) {
    case "V":
      return startValue(f.n, b);
    case "S":
      if (f.esc === 0) {
        if (b === 0x22) return [];
        if (b === 0x5c) return [{ k: "S", esc: 1 }];
        return b < 0x20 ? null : [f];
      }
      if (f.esc === 1) {
        if (b === 0x75) return [{ k: "S", esc: 5 }];
        return '"\\/bfnrt'.includes(String.fromCharCode(b)) ? [STRING_FRAME] : null;
      }
      return isHex(b) ? [f.esc === 2 ? STRING_FRAME : { k: "S", esc: f.esc - 1 }] : null;
    case "N": {
      const canEnd = f.st === 1 || f.st === 2 || f.st === 4 || f.st === 7;
      const next = (st: number): Frame[] | null =>
        f.len >= MAX_NUMBER_LENGTH ? null : [{ k: "N", integer: f.integer, st, len: f.len + 1 }];
      const d = isDigit(b);
      let r: Frame[] | null = null;
      switch (f.st) {
        case 0:
          r = b === 0x30 ? next(1) : d ? next(2) : null;
          break;
        case 1:
        case 2:
          if (d && f.st === 2) r = next(2);
          else if (b === 0x2e && !f.integer) r = next(3);
          else if ((b === 0x65 || b === 0x45) && !f.integer) r = next(5);
          break;
        case 3:
        case 4:
          r = d ? next(4) : f.st === 4 && (b === 0x65 || b === 0x45) ? next(5) : null;
          break;
        case 5:
          r = b === 0x2b || b === 0x2d ? next(6) : d ? next(7) : null;
          break;
        case 6:
        case 7:
          r = d ? next(7) : null;
          break;
      }
      if (r) return r;
      return canEnd ? DONE : null;
    }
    case "L": {
      const texts = f.texts.filter((t) => t.length > f.pos && t[f.pos] === b);
      if (texts.length > 0)
        return texts.every((t) => t.length === f.pos + 1) ? [] : [{ k: "L", texts, pos: f.pos + 1 }];
      return f.texts.some((t) => t.length === f.pos) ? DONE : null;
    }
    case "A":
      switch (f.st) {
        case 0:
          if (b === 0x5d) return [];
          break;
        case 1:
          return b === 0x2c ? [{ k: "A", items: f.items, st: 2 }] : b === 0x5d ? [] : null;
        case 2:
          if (b === 0x20) return [{ k: "A", items: f.items, st: 3 }];
          break;
      }
      {
        const v = startValue(f.items, b);
        return v ? [{ k: "A", items: f.items, st: 1 }, ...v] : null;
      }
    case "O": {
      const n = f.n;
      const free = n.additional !== null;
      // st: 0 after '{' | 1 in a key | 2 before ':' | 3 after ':' | 4 after ': ' | 5 after a value | 6 after ',' | 7 after ', '
      switch (f.st) {
        case 0:
        case 6:
        case 7: {
          if (f.st === 0 && b === 0x7d) return mayClose(n, f.last) ? [] : null;
          if (f.st === 6 && b === 0x20) return [{ ...f, st: 7 }];
          if (b !== 0x22) return null;
          if (free) return [{ ...f, st: 2, cur: n.additional! }, STRING_FRAME];
          const keyIdx = nextKeys(n, f.last);
          if (keyIdx.length === 0) return null;
          return [
            { ...f, st: 1, keyIdx, keys: keyIdx.map((i) => bytesOf(JSON.stringify(n.props[i][0]))), pos: 1 },
          ];
        }
        case 1: {
          const pos = f.pos!;
          const keep: number[] = [];
          const keys: Uint8Array[] = [];
          f.keys!.forEach((k, j) => {
            if (k.length > pos && k[pos] === b) {
              keep.push(f.keyIdx![j]);
              keys.push(k);
            }
          });
          if (keep.length === 0) return null;
          const done = keys.findIndex((k) => k.length === pos + 1);
          if (done >= 0) return [{ k: "O", n, st: 2, last: keep[done], cur: n.props[keep[done]][1] }];
          return [{ ...f, keyIdx: keep, keys, pos: pos + 1 }];
        }
        case 2:
          return b === 0x3a ? [{ ...f, st: 3 }] : null;
        case 3:
        case 4: {
          if (f.st === 3 && b === 0x20) return [{ ...f, st: 4 }];
          const v = startValue(f.cur!, b);
          return v ? [{ k: "O", n, st: 5, last: f.last }, ...v] : null;
        }
        case 5:
          if (b === 0x7d) return mayClose(n, f.last) ? [] : null;
          if (b === 0x2c)
            return free || nextKeys(n, f.last).length > 0 ? [{ k: "O", n, st: 6, last: f.last }] : null;
          return null;
      }
      return null;
    }
  }
}

/** The state after `b`, or null when `b` cannot continue valid output. */
export function step(state: JsonState, b: number): JsonState | null {
  let s = state;
  for (;;) {
    if (s.length === 0) return null;
    const top = s[s.length - 1];
    const r = stepFrame(top, b);
    if (r === null) return null;
    if (r === DONE) {
      s = s.slice(0, -1);
      continue;
    }
    if (r.length === 1 && r[0] === top) return s;
    const out = s.slice(0, -1);
    for (const f of r) out.push(f);
    return out;
  }
}

/** Inside a string with no escape pending: every byte ≥ 0x20 but `"` and `\` leaves the state as it is. */
export function inFreeString(state: JsonState): boolean {
  const top = state[state.length - 1];
  return top !== undefined && top.k === "S" && top.esc === 0;
}

/** A byte that leaves a free string's state unchanged. */
export function isPlainStringByte(b: number): boolean {
  return b >= 0x20 && b !== 0x22 && b !== 0x5c;
}

/** The output so far is a complete value (a number or literal may still be extended). */
export function isComplete(state: JsonState): boolean {
  if (state.length === 0) return true;
  if (state.length > 1) return false;
  return stepFrame(state[0], 0x20) === DONE;
}
