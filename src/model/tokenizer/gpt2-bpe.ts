/**
 * GPT-2 byte-level BPE (`tokenizer.ggml.model = "gpt2"`, as llama.cpp stores it): tokens in the
 * byte-to-unicode alphabet (`Ġ` for a space), merges as "left right" strings whose index is the
 * priority. Pre-tokenisation uses GPT-2's regex. Checked token for token against js-tiktoken
 * r50k_base in test/model/tokenizer/gpt2-bpe.test.ts.
 */
import type { GgufReader } from '../gguf/reader.js';
import { readSpecialIds, readTokens, tokenizerError, type SpecialIds, type StreamDecoder, type Tokenizer } from './tokenizer.js';

/** GPT-2's pre-tokeniser (tiktoken r50k_base `pat_str`). */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards. */
function byteAlphabet(): { toChar: string[]; toByte: Map<string, number> } {
  const toChar: string[] = new Array<string>(256);
  const direct = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  for (let b = 0; b < 256; b++) toChar[b] = String.fromCodePoint(direct(b) ? b : 256 + extra++);
  return { toChar, toByte: new Map(toChar.map((c, b) => [c, b])) };
}

const ALPHABET = byteAlphabet();
const utf8 = new TextEncoder();
const CACHE_LIMIT = 10_000;

export class Gpt2Tokenizer implements Tokenizer {
  readonly kind = 'gpt2';
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  private readonly ids = new Map<string, number>();
  private readonly mergeRank = new Map<string, number>();
  private readonly silent: ReadonlySet<number>;
  private readonly cache = new Map<string, number[]>();

  /** Throws BITMAR_ERR_TOKENIZER for a merge whose parts or result are not tokens. */
  constructor(
    private readonly tokens: readonly string[],
    merges: readonly string[],
    special: SpecialIds,
    source = '<gpt2 tokenizer>',
  ) {
    this.vocabSize = tokens.length;
    ({ bosId: this.bosId, eosId: this.eosId, padId: this.padId, unkId: this.unkId } = special);
    tokens.forEach((t, i) => {
      if (!this.ids.has(t)) this.ids.set(t, i);
    });
    for (const c of ALPHABET.toChar) {
      if (!this.ids.has(c)) throw tokenizerError(source, `gpt2 vocabulary lacks the byte token ${JSON.stringify(c)}`);
    }
    merges.forEach((m, rank) => {
      const sp = m.indexOf(' ');
      if (sp <= 0 || sp === m.length - 1 || m.indexOf(' ', sp + 1) !== -1) throw tokenizerError(source, `merge ${rank} ${JSON.stringify(m)} is not "left right"`);
      if (!this.ids.has(m.slice(0, sp) + m.slice(sp + 1))) throw tokenizerError(source, `merge ${rank} ${JSON.stringify(m)} makes a string that is not a token`);
      if (!this.mergeRank.has(m)) this.mergeRank.set(m, rank);
    });
    this.silent = new Set([this.padId, this.bosId, this.eosId]);
  }

  /** Build from `tokenizer.ggml.tokens`, `tokenizer.ggml.merges` and the special ids. */
  static fromGguf(r: GgufReader): Gpt2Tokenizer {
    const tokens = readTokens(r);
    if (r.get('tokenizer.ggml.merges') === undefined) throw tokenizerError(r.source, 'metadata "tokenizer.ggml.merges" is missing (needed by the gpt2 tokenizer)');
    let merges: readonly string[];
    try {
      merges = r.getStringArray('tokenizer.ggml.merges');
    } catch (e) {
      throw tokenizerError(r.source, (e as Error).message.replace(`${r.source}: `, ''));
    }
    return new Gpt2Tokenizer(tokens, merges, readSpecialIds(r, tokens.length), r.source);
  }

  /** Text → ids with no special tokens (a literal "<|endoftext|>" is encoded as text). */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const m of text.matchAll(GPT2_SPLIT)) {
      const piece = m[0];
      let ids = this.cache.get(piece);
      if (ids === undefined) {
        ids = this.bpe(piece);
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(piece, ids);
      }
      for (const id of ids) out.push(id);
    }
    return out;
  }

  /** BPE of one pre-token: start from its bytes, merge the lowest-ranked adjacent pair until none is left. */
  private bpe(piece: string): number[] {
    const parts = Array.from(utf8.encode(piece), (b) => ALPHABET.toChar[b]!);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = this.mergeRank.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      parts.splice(best, 2, parts[best]! + parts[best + 1]!);
    }
    return parts.map((p) => this.ids.get(p)!);
  }

  decode(ids: readonly number[]): string {
    const d = this.streamDecoder();
    let s = '';
    for (const id of ids) s += d.push(id);
    return s + d.end();
  }

  token(id: number): string {
    const t = this.tokens[id];
    if (t === undefined) throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
    return t;
  }

  /**
   * Streams text: bytes of a character split across tokens are held until it is complete.
   */
  streamDecoder(): StreamDecoder {
    const td = new TextDecoder('utf-8', { ignoreBOM: true });
    const bytes = new Uint8Array(1024);
    return {
      end: (): string => td.decode(),
      push: (id: number): string => {
        const t = this.token(id);
        if (this.silent.has(id)) return '';
        let n = 0;
        let out = '';
        for (const ch of t) {
          const b = ALPHABET.toByte.get(ch);
          if (b === undefined) {
            // A token outside the byte alphabet (an added special token): its text as is.
            out += td.decode(bytes.subarray(0, n), { stream: true }) + ch;
            n = 0;
          } else {
            if (n === bytes.length) {
              out += td.decode(bytes.subarray(0, n), { stream: true });
              n = 0;
            }
            bytes[n++] = b;
          }
        }
        return out + td.decode(bytes.subarray(0, n), { stream: true });
      },
    };
  }
}

/**
 * Convert tiktoken ranks (js-tiktoken's `bpe_ranks` text: lines "<tag> <offset> <base64>…") to the
 * GGUF form: tokens in the byte alphabet, indexed by rank, and the merges that rebuild each
 * multi-byte token, ordered by its rank. `specials` are appended at their ids.
 */
export function gpt2VocabFromTiktoken(bpeRanks: string, specials: Readonly<Record<string, number>>): { tokens: string[]; merges: string[] } {
  const byRank: Uint8Array[] = [];
  for (const line of bpeRanks.split('\n')) {
    if (line === '') continue;
    const [, offsetStr, ...toks] = line.split(' ');
    const offset = Number.parseInt(offsetStr!, 10);
    toks.forEach((b64, i) => (byRank[offset + i] = Uint8Array.from(Buffer.from(b64, 'base64'))));
  }
  const key = (b: Uint8Array): string => Array.from(b, (x) => ALPHABET.toChar[x]!).join('');
  const rankOf = new Map<string, number>();
  const tokens: string[] = [];
  byRank.forEach((b, r) => {
    tokens[r] = key(b);
    rankOf.set(tokens[r]!, r);
  });
  const merges: { rank: number; merge: string }[] = [];
  byRank.forEach((b, r) => {
    if (b.length < 2) return;
    // Run BPE with only the merges below r: what is left is the pair that r merges.
    const parts = Array.from(b, (x) => ALPHABET.toChar[x]!);
    while (parts.length > 2) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) {
        const pr = rankOf.get(parts[i]! + parts[i + 1]!);
        if (pr !== undefined && pr < r && pr < bestRank) {
          bestRank = pr;
          best = i;
        }
      }
      if (best < 0) break;
      parts.splice(best, 2, parts[best]! + parts[best + 1]!);
    }
    if (parts.length === 2) merges.push({ rank: r, merge: `${parts[0]} ${parts[1]}` });
  });
  for (const [text, id] of Object.entries(specials)) tokens[id] = text;
  return { tokens, merges: merges.sort((a, b) => a.rank - b.rank).map((m) => m.merge) };
}
