// Each token id → the raw bytes it stands for, as OpenAI reports them in logprobs (`bytes`) and as
// constrained decoding matches them against a grammar. A byte-level BPE token can hold part of a
// UTF-8 character, so decoding it alone shows U+FFFD; its bytes come from the vocabulary entry:
//   - byte-level BPE (GPT-2 alphabet, Llama 3, Qwen): each character of the entry is one byte;
//   - SentencePiece-style: `<0xNN>` byte-fallback entries are that byte, "▁" is a space;
//   - added/special tokens: the UTF-8 of their content.
// Computed once per tokenizer (a vocabulary of 150k entries takes ~100 ms) and kept.

import type { HfTokenizer } from "../../worker/engine/hf/tokenizer.js";

/** GPT-2's byte ↔ printable-character map, inverted: character → byte. */
function byteLevelDecoder(): Map<string, number> {
  const printable = new Set<number>();
  for (let b = 33; b <= 126; b++) printable.add(b);
  for (let b = 161; b <= 172; b++) printable.add(b);
  for (let b = 174; b <= 255; b++) printable.add(b);
  const map = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) map.set(String.fromCharCode(printable.has(b) ? b : 256 + extra++), b);
  return map;
}

const BYTE_FALLBACK = /^<0x([0-9A-Fa-f]{2})>$/;
const EMPTY = new Uint8Array(0);
const tables = new WeakMap<HfTokenizer, Uint8Array[]>();

/** bytes[id] for every id of the vocabulary (added tokens included). */
export function tokenBytesTable(tokenizer: HfTokenizer): Uint8Array[] {
  let table = tables.get(tokenizer);
  if (table) return table;
  const decoder = byteLevelDecoder();
  // a byte-level vocabulary holds all 256 byte characters as tokens
  let byteLevel = true;
  for (const ch of decoder.keys()) {
    if (tokenizer.tokenToId(ch) === undefined) {
      byteLevel = false;
      break;
    }
  }
  const added = new Map(tokenizer.addedTokens.map((t) => [t.id, t.content]));
  let size = tokenizer.vocabSize;
  for (const id of added.keys()) size = Math.max(size, id + 1);
  table = new Array<Uint8Array>(size);
  for (let id = 0; id < size; id++) {
    const content = added.get(id);
    if (content !== undefined) {
      table[id] = new Uint8Array(Buffer.from(content, "utf8"));
      continue;
    }
    const token = tokenizer.idToToken(id);
    if (token === undefined) {
      table[id] = EMPTY;
      continue;
    }
    const fallback = BYTE_FALLBACK.exec(token);
    if (fallback) {
      table[id] = Uint8Array.of(Number.parseInt(fallback[1], 16));
      continue;
    }
    if (byteLevel) {
      const bytes: number[] = [];
      let ok = true;
      for (const ch of token) {
        const b = decoder.get(ch);
        if (b === undefined) {
          ok = false;
          break;
        }
        bytes.push(b);
      }
      if (ok) {
        table[id] = Uint8Array.from(bytes);
        continue;
      }
    }
    table[id] = new Uint8Array(Buffer.from(token.replaceAll("\u2581", " "), "utf8"));
  }
  tables.set(tokenizer, table);
  return table;
}

export function tokenBytes(tokenizer: HfTokenizer, id: number): Uint8Array {
  return tokenBytesTable(tokenizer)[id] ?? EMPTY;
}
