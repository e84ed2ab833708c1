// Constrained decoding of JSON: before each token, every token whose bytes cannot continue valid
// output (json-grammar.ts) is masked. The vocabulary is a byte trie built once per tokenizer, so
// tokens sharing a prefix are checked together and a walk stops at the first byte that breaks the
// grammar. Special tokens never appear in JSON; the end-of-turn tokens are allowed exactly when
// the value is complete (and `suffix`, if any, has been written after it).
//
//   const constrain = jsonConstraint(compileSchema(schema), vocabTrie(tokenizer), stopIds);
//   generate(model, prompt, { processLogits: constrain, ... });

import type { HfTokenizer } from "../../worker/engine/hf/tokenizer.js";
import {
  inFreeString,
  initialState,
  isComplete,
  isPlainStringByte,
  type JsonState,
  type SchemaNode,
  step,
} from "./json-grammar.js";
import { tokenBytesTable } from "./token-bytes.js";

interface TrieNode {
  /** token ids whose bytes end here */
  ids: number[];
  children: Map<number, TrieNode>;
}

export interface VocabTrie {
  root: TrieNode;
  bytes: readonly Uint8Array[];
  /** 1 for tokens made only of bytes that continue a string unchanged (most of a vocabulary) */
  plainMask: Uint8Array;
  /** the other ordinary tokens, checked one by one inside strings */
  nonPlainIds: Int32Array;
}

const tries = new WeakMap<HfTokenizer, VocabTrie>();

/** The byte trie of a tokenizer's ordinary (non-special) tokens; built once and kept. */
export function vocabTrie(tokenizer: HfTokenizer): VocabTrie {
  let trie = tries.get(tokenizer);
  if (trie) return trie;
  const bytes = tokenBytesTable(tokenizer);
  const special = new Set(tokenizer.addedTokens.filter((t) => t.special).map((t) => t.id));
  const root: TrieNode = { ids: [], children: new Map() };
  const plainMask = new Uint8Array(bytes.length);
  const nonPlain: number[] = [];
  bytes.forEach((b, id) => {
    if (b.length === 0 || special.has(id)) return;
    if (b.every(isPlainStringByte)) plainMask[id] = 1;
    else nonPlain.push(id);
    let node = root;
    for (const byte of b) {
      let child = node.children.get(byte);
      if (!child) {
        child = { ids: [], children: new Map() };
        node.children.set(byte, child);
      }
      node = child;
    }
    node.ids.push(id);
  });
  trie = { root, bytes, plainMask, nonPlainIds: Int32Array.from(nonPlain) };
  tries.set(tokenizer, trie);
  return trie;
}

/**
 * Mark every token allowed from `state` in `allowed`. Inside a string (most steps of most JSON)
 * the plain tokens are allowed as a block and only the others are stepped through.
 */
function collectAllowed(trie: VocabTrie, state: JsonState, allowed: Uint8Array): void {
  if (!inFreeString(state)) {
    walk(trie.root, state, allowed);
    return;
  }
  allowed.set(trie.plainMask.subarray(0, allowed.length));
  for (const id of trie.nonPlainIds) {
    if (id >= allowed.length) continue;
    let s: JsonState | null = state;
    for (const b of trie.bytes[id]) {
      s = step(s, b);
      if (s === null) break;
    }
    if (s !== null) allowed[id] = 1;
  }
}

function walk(node: TrieNode, state: JsonState, allowed: Uint8Array): void {
  for (const [byte, child] of node.children) {
    const next = step(state, byte);
    if (next === null) continue;
    for (const id of child.ids) allowed[id] = 1;
    if (child.children.size > 0) walk(child, next, allowed);
  }
}

export interface JsonConstraint {
  (logits: Float32Array, generated: readonly number[]): void;
  /** the value and suffix are complete */
  done(): boolean;
}

/**
 * processLogits for generate(): JSON of `root`, then the literal `suffix`, then an end-of-turn
 * token. `skip` generated tokens are not this constraint's (an earlier part of the reply).
 */
export function jsonConstraint(
  root: SchemaNode,
  trie: VocabTrie,
  stopIds: ReadonlySet<number>,
  opts: { suffix?: string; skip?: number } = {},
): JsonConstraint {
  let state: JsonState | null = initialState(root);
  const suffix = new Uint8Array(Buffer.from(opts.suffix ?? "", "utf8"));
  let suffixPos = -1; // -1: still in the value
  let seen = opts.skip ?? 0;
  const feed = (b: number) => {
    if (suffixPos < 0 && state !== null) {
      const next = step(state, b);
      if (next !== null) {
        state = next;
        return;
      }
      if (isComplete(state) && suffix.length > 0) suffixPos = 0;
      else {
        state = null;
        return;
      }
    }
    if (suffixPos >= 0 && suffixPos < suffix.length && suffix[suffixPos] === b) suffixPos++;
    else state = null;
  };
  const valueDone = () => state !== null && isComplete(state);
  const allDone = () => valueDone() && (suffix.length === 0 || suffixPos === suffix.length);
  const constrain = ((logits: Float32Array, generated: readonly number[]) => {
    for (; seen < generated.length; seen++) for (const b of trie.bytes[generated[seen]] ?? []) feed(b);
    if (state === null) return; // off the grammar (cannot happen when every token was masked here)
    const allowed = new Uint8Array(logits.length);
    if (allDone()) {
      for (const id of stopIds) if (id < allowed.length) allowed[id] = 1;
    } else if (suffixPos >= 0) {
      allowSuffix(trie.root, suffix, suffixPos, allowed);
    } else {
      collectAllowed(trie, state, allowed);
      if (valueDone()) {
        if (suffix.length > 0) allowSuffix(trie.root, suffix, 0, allowed);
        else for (const id of stopIds) if (id < allowed.length) allowed[id] = 1;
      }
    }
    for (let id = 0; id < logits.length; id++) if (!allowed[id]) logits[id] = Number.NEGATIVE_INFINITY;
  }) as JsonConstraint;
  constrain.done = allDone;
  return constrain;
}

/** Tokens whose bytes continue `suffix` from `pos` (and stay inside it). */
function allowSuffix(root: TrieNode, suffix: Uint8Array, pos: number, allowed: Uint8Array): void {
  let node: TrieNode | undefined = root;
  for (let i = pos; i < suffix.length && node; i++) {
    node = node.children.get(suffix[i]);
    if (node) for (const id of node.ids) allowed[id] = 1;
  }
}
