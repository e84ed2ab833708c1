// A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) on top of @huggingface/tokenizers,
// with the two things that library's encode() cannot do and training needs:
//   - special-token parsing switched off (`parseSpecial: false`), so text a user wrote, such as
//     "<|im_end|>", becomes ordinary tokens, never a real end-of-turn (transformers'
//     `split_special_tokens=True`: special added tokens are not matched, non-special ones still are);
//   - encoding a piece of a longer text (`atStart: false`), so tokenizers whose pre-tokenizer adds a
//     prefix only to the first section of a text (Metaspace `prepend_scheme: "first"`) give the same
//     ids piece by piece as for the whole text.
// The library's normalizer, pre-tokenizer, BPE/Unigram/WordPiece model and decoder are used as they
// are; only the splitting on added tokens is done here (mirroring the library's own order:
// unnormalized added tokens, then normalize, then normalized added tokens).

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

/** End-of-turn markers of well-known chat formats; those present as special tokens count as stops. */
const KNOWN_END_OF_TURN_TOKENS = [
  "<|im_end|>",
  "<|eot_id|>",
  "<|eom_id|>",
  "<|end|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "<|end_of_text|>",
  "</s>",
];

export interface AddedTokenInfo {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean;
  lstrip: boolean;
  rstrip: boolean;
}

export interface EncodeOptions {
  /** match special added tokens in the text (default true); false = transformers' split_special_tokens */
  parseSpecial?: boolean;
  /** let the post-processor add what the model's template adds (e.g. Llama 3's <|begin_of_text|>) */
  addSpecialTokens?: boolean;
  /** false when the text continues an earlier piece (no first-section prefix space); default true */
  atStart?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /** transformers' clean_up_tokenization_spaces; default false so decode(encode(x)) === x */
  cleanUpSpaces?: boolean;
}

/** The raw files of a tokenizer; `chatTemplate` overrides tokenizer_config's when given. */
export interface TokenizerFiles {
  tokenizerJson: any;
  tokenizerConfig: any;
  generationConfig?: any;
  chatTemplate?: string | null;
}

/** A chat template as a model folder may ship it: one source, or several by name ("default", "tool_use"). */
export type ChatTemplateSource = string | Record<string, string>;

/** A trie over token strings that splits text at the longest match, leftmost first. */
class AddedTokenSplitter {
  private readonly root: Map<string, any> = new Map();
  private readonly empty: boolean;

  constructor(contents: Iterable<string>) {
    let n = 0;
    for (const word of contents) {
      if (word.length === 0) continue;
      let node = this.root;
      for (const ch of word) {
        let next = node.get(ch);
        if (!next) {
          next = new Map();
          node.set(ch, next);
        }
        node = next;
      }
      node.set("", word);
      n++;
    }
    this.empty = n === 0;
  }

  /** Sections in order; `token` is set for a matched added token. */
  split(text: string): { text: string; token: boolean }[] {
    if (this.empty || text.length === 0) return text.length ? [{ text, token: false }] : [];
    const out: { text: string; token: boolean }[] = [];
    let start = 0;
    let i = 0;
    while (i < text.length) {
      let node: Map<string, any> | undefined = this.root;
      let match: string | undefined;
      let j = i;
      while (j < text.length) {
        const cp = text.codePointAt(j)!;
        const ch = String.fromCodePoint(cp);
        node = node.get(ch);
        if (!node) break;
        j += ch.length;
        const end = node.get("");
        if (end !== undefined) match = end;
      }
      if (match !== undefined) {
        if (i > start) out.push({ text: text.slice(start, i), token: false });
        out.push({ text: match, token: true });
        i += match.length;
        start = i;
      } else {
        i += text.codePointAt(i)! > 0xffff ? 2 : 1;
      }
    }
    if (start < text.length) out.push({ text: text.slice(start), token: false });
    return out;
  }
}

function tokenContent(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as any).content === "string") {
    return (value as any).content;
  }
  return null;
}

export class HfTokenizer {
  readonly bosToken: string | null;
  readonly bosId: number | null;
  readonly eosToken: string | null;
  readonly eosId: number | null;
  /** the pad token; falls back to eos (then 0) when the tokenizer has none: pads are never trained */
  readonly padId: number;
  readonly padToken: string | null;
  readonly vocabSize: number;
  /** ids the model may end a turn with: eos, generation_config's eos ids, known end-of-turn specials */
  readonly stopIds: ReadonlySet<number>;
  /** the strings of `stopIds` */
  readonly stopTokens: readonly string[];
  /** special added tokens by content (these are what parseSpecial: false leaves unmatched) */
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly addedTokens: readonly AddedTokenInfo[];
  /** ids the post-processor puts before / after a text when addSpecialTokens is on */
  readonly specialPrefixIds: readonly number[];
  readonly specialSuffixIds: readonly number[];
  /** the folder's chat template (tokenizer_config.json, chat_template.jinja or .json), if any */
  readonly chatTemplate: ChatTemplateSource | null;
  /** every *_token of tokenizer_config.json by name, for the chat template's context */
  readonly specialTokensMap: Readonly<Record<string, string>>;
  readonly cleanUpSpacesDefault: boolean;

  private readonly lib: Tokenizer;
  private readonly byContent: Map<string, AddedTokenInfo>;
  private readonly unnormalizedAll: AddedTokenSplitter;
  private readonly unnormalizedPlain: AddedTokenSplitter;
  private readonly normalizedAll: AddedTokenSplitter;
  private readonly normalizedPlain: AddedTokenSplitter;
  private readonly specialOnly: AddedTokenSplitter;

  constructor(files: TokenizerFiles) {
    const { tokenizerJson, tokenizerConfig } = files;
    if (!tokenizerJson || typeof tokenizerJson !== "object" || !tokenizerJson.model) {
      throw new Error("tokenizer.json: missing the `model` section");
    }
    const config = tokenizerConfig && typeof tokenizerConfig === "object" ? tokenizerConfig : {};
    this.lib = new Tokenizer(tokenizerJson, config);
    this.cleanUpSpacesDefault = config.clean_up_tokenization_spaces ?? false;

    const added: AddedTokenInfo[] = (tokenizerJson.added_tokens ?? []).map((t: any) => ({
      id: t.id,
      content: t.content,
      special: t.special ?? false,
      normalized: t.normalized ?? !(t.special ?? false),
      lstrip: t.lstrip ?? false,
      rstrip: t.rstrip ?? false,
    }));
    this.addedTokens = added;
    this.byContent = new Map(added.map((t) => [t.content, t]));
    const normalize = (s: string) => (this.lib.normalizer ? this.lib.normalizer(s) : s);
    const unnorm = added.filter((t) => !t.normalized || !this.lib.normalizer);
    const norm = added.filter((t) => t.normalized && this.lib.normalizer);
    for (const t of norm) {
      const n = normalize(t.content);
      if (!this.byContent.has(n)) this.byContent.set(n, t);
    }
    this.unnormalizedAll = new AddedTokenSplitter(unnorm.map((t) => t.content));
    this.unnormalizedPlain = new AddedTokenSplitter(unnorm.filter((t) => !t.special).map((t) => t.content));
    this.normalizedAll = new AddedTokenSplitter(norm.map((t) => normalize(t.content)));
    this.normalizedPlain = new AddedTokenSplitter(
      norm.filter((t) => !t.special).map((t) => normalize(t.content)),
    );

    this.specialOnly = new AddedTokenSplitter(added.filter((t) => t.special).map((t) => t.content));
    const special = new Map<string, number>();
    for (const t of added) if (t.special) special.set(t.content, t.id);
    this.specialTokens = special;

    const idOf = (content: string | null): number | null => {
      if (content === null) return null;
      const id = this.tokenToId(content);
      return id === undefined ? null : id;
    };
    this.bosToken = tokenContent(config.bos_token);
    this.eosToken = tokenContent(config.eos_token);
    this.padToken = tokenContent(config.pad_token);
    this.bosId = idOf(this.bosToken);
    this.eosId = idOf(this.eosToken);
    this.padId = idOf(this.padToken) ?? this.eosId ?? 0;

    let maxId = -1;
    const vocab = (this.lib.model as any)?.vocab;
    if (Array.isArray(vocab)) maxId = vocab.length - 1;
    for (const t of added) maxId = Math.max(maxId, t.id);
    this.vocabSize = maxId + 1;

    const tokensMap: Record<string, string> = {};
    for (const key of [
      "bos_token",
      "eos_token",
      "unk_token",
      "sep_token",
      "pad_token",
      "cls_token",
      "mask_token",
    ]) {
      const c = tokenContent(config[key]);
      if (c !== null) tokensMap[key] = c;
    }
    this.specialTokensMap = tokensMap;

    const stops = new Set<number>();
    if (this.eosId !== null) stops.add(this.eosId);
    const genEos = files.generationConfig?.eos_token_id;
    for (const id of Array.isArray(genEos)
      ? genEos
      : genEos === undefined || genEos === null
        ? []
        : [genEos]) {
      if (Number.isInteger(id)) stops.add(id);
    }
    for (const content of KNOWN_END_OF_TURN_TOKENS) {
      const id = special.get(content);
      if (id !== undefined) stops.add(id);
    }
    this.stopIds = stops;
    this.stopTokens = [...stops].map((id) => this.idToToken(id)).filter((s): s is string => s !== undefined);

    // What the post-processor adds around a text (bos for Llama 3, nothing for Qwen): diff a probe.
    const bare: number[] = this.lib.encode("a", { add_special_tokens: false }).ids;
    const full: number[] = this.lib.encode("a", { add_special_tokens: true }).ids;
    const start = full.findIndex((_, i) => full.slice(i, i + bare.length).every((v, k) => v === bare[k]));
    this.specialPrefixIds = start >= 0 ? full.slice(0, start) : [];
    this.specialSuffixIds = start >= 0 ? full.slice(start + bare.length) : [];

    this.chatTemplate = files.chatTemplate ?? parseChatTemplateField(config.chat_template);
  }

  /** Token ids of `text`. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const parseSpecial = opts.parseSpecial ?? true;
    const ids: number[] = [];
    if (opts.addSpecialTokens) ids.push(...this.specialPrefixIds);
    const sections = (parseSpecial ? this.unnormalizedAll : this.unnormalizedPlain).split(text);
    applyStrip(sections, this.byContent);
    const offset = (opts.atStart ?? true) ? 0 : 1;
    for (let k = 0; k < sections.length; k++) {
      const section = sections[k];
      if (section.token) {
        ids.push(this.byContent.get(section.text)!.id);
        continue;
      }
      if (section.text.length === 0) continue;
      this.encodeSection(section.text, k + offset, parseSpecial, ids);
    }
    if (opts.addSpecialTokens) ids.push(...this.specialSuffixIds);
    return ids;
  }

  private encodeSection(text: string, sectionIndex: number, parseSpecial: boolean, out: number[]): void {
    const normalized = this.lib.normalizer ? this.lib.normalizer(text) : text;
    if (normalized.length === 0) return;
    const subsections = (parseSpecial ? this.normalizedAll : this.normalizedPlain).split(normalized);
    applyStrip(subsections, this.byContent);
    for (const sub of subsections) {
      if (sub.text.length === 0) continue;
      if (sub.token) {
        out.push(this.byContent.get(sub.text)!.id);
        continue;
      }
      const pre = this.lib.pre_tokenizer
        ? (this.lib.pre_tokenizer as any)(sub.text, { section_index: sectionIndex })
        : [sub.text];
      const tokens: string[] = (this.lib.model as any)(pre);
      for (const t of tokens) {
        const id = this.tokenToId(t) ?? (this.lib.model as any).unk_token_id;
        if (id === undefined || id === null) {
          throw new Error(`tokenizer: no id for token ${JSON.stringify(t)} and no unk token`);
        }
        out.push(id);
      }
    }
  }

  /**
   * Split text at special tokens: `{ text, id }` for a special token, `{ text, id: null }` for the
   * text between them (whitespace eaten by lstrip/rstrip tokens removed).
   */
  splitOnSpecialTokens(text: string): { text: string; id: number | null }[] {
    const sections = this.specialOnly.split(text);
    applyStrip(sections, this.byContent);
    return sections.map((s) => ({ text: s.text, id: s.token ? this.byContent.get(s.text)!.id : null }));
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    if (ids.length === 0) return "";
    return this.lib.decode(Array.from(ids), {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: opts.cleanUpSpaces ?? false,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.lib.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.lib.id_to_token(id);
  }

  isSpecialId(id: number): boolean {
    const t = this.idToToken(id);
    return t !== undefined && this.specialTokens.get(t) === id;
  }
}

/** An added token with lstrip/rstrip eats the whitespace on that side (as the library and Rust do). */
function applyStrip(
  sections: { text: string; token: boolean }[],
  byContent: Map<string, AddedTokenInfo>,
): void {
  for (let i = 0; i < sections.length; i++) {
    if (!sections[i].token) continue;
    const info = byContent.get(sections[i].text);
    if (!info) continue;
    if (info.lstrip && i > 0 && !sections[i - 1].token) sections[i - 1].text = sections[i - 1].text.trimEnd();
    if (info.rstrip && i + 1 < sections.length && !sections[i + 1].token) {
      sections[i + 1].text = sections[i + 1].text.trimStart();
    }
  }
}

/** tokenizer_config's `chat_template`: a string, or a list of {name, template}. */
export function parseChatTemplateField(value: unknown): ChatTemplateSource | null {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    const named: Record<string, string> = {};
    for (const entry of value) {
      if (entry && typeof entry.name === "string" && typeof entry.template === "string") {
        named[entry.name] = entry.template;
      }
    }
    return Object.keys(named).length ? named : null;
  }
  return null;
}

async function readJsonIfPresent(path: string): Promise<any | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err: any) {
    if (err?.code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err: any) {
    throw new Error(`${path}: not valid JSON (${err?.message ?? err})`);
  }
}

/**
 * Load the tokenizer of a model folder: tokenizer.json (required), tokenizer_config.json,
 * generation_config.json (its eos ids become stop ids), and the chat template from
 * chat_template.jinja or chat_template.json when present (newer transformers save it there),
 * else from tokenizer_config.json.
 */
export async function loadTokenizer(folder: string): Promise<HfTokenizer> {
  const tokenizerJson = await readJsonIfPresent(join(folder, "tokenizer.json"));
  if (tokenizerJson === undefined) throw new Error(`${folder}: no tokenizer.json`);
  const tokenizerConfig = (await readJsonIfPresent(join(folder, "tokenizer_config.json"))) ?? {};
  const generationConfig = await readJsonIfPresent(join(folder, "generation_config.json"));
  let chatTemplate: string | null = null;
  try {
    chatTemplate = await readFile(join(folder, "chat_template.jinja"), "utf8");
  } catch (err: any) {
    if (err?.code !== "ENOENT") throw err;
    const json = await readJsonIfPresent(join(folder, "chat_template.json"));
    if (typeof json?.chat_template === "string") chatTemplate = json.chat_template;
  }
  return new HfTokenizer({ tokenizerJson, tokenizerConfig, generationConfig, chatTemplate });
}
