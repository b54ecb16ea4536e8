/**
 * The word tokenizer of docs/bitmar-stream.md §5: vocabulary `<pad> <bos> <eos> <unk>` then words;
 * text is lower-cased, trimmed, stripped of `?.!,` and split on whitespace; an unknown word is <unk>.
 * Decoding joins words with single spaces and drops <pad>, <bos> and <eos>.
 */
import type { GgufReader } from '../gguf/reader.js';
import { readSpecialIds, readTokens, tokenizerError, type SpecialIds, type StreamDecoder, type Tokenizer } from './tokenizer.js';

/** The §5 normalisation: lower-case, trim, drop every `?`, `.`, `!` and `,`, split on whitespace. */
export function splitWords(text: string): string[] {
  const s = text.toLowerCase().trim().replace(/[?.!,]/g, '');
  return s === '' ? [] : s.split(/\s+/).filter((w) => w !== '');
}

export class WordTokenizer implements Tokenizer {
  readonly kind = 'word';
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  private readonly ids = new Map<string, number>();
  private readonly silent: ReadonlySet<number>;

  /** Throws BITMAR_ERR_TOKENIZER on a duplicate or whitespace-containing token. */
  constructor(
    private readonly tokens: readonly string[],
    special: SpecialIds,
    source = '<word tokenizer>',
  ) {
    this.vocabSize = tokens.length;
    ({ bosId: this.bosId, eosId: this.eosId, padId: this.padId, unkId: this.unkId } = special);
    tokens.forEach((t, i) => {
      if (this.ids.has(t)) throw tokenizerError(source, `token "${t}" appears twice (ids ${this.ids.get(t)} and ${i})`);
      if (t === '' || /\s/.test(t)) throw tokenizerError(source, `token ${i} ${JSON.stringify(t)} is empty or contains whitespace`);
      this.ids.set(t, i);
    });
    this.silent = new Set([this.padId, this.bosId, this.eosId]);
  }

  /** Build from `tokenizer.ggml.tokens` and the special ids in a GGUF file. */
  static fromGguf(r: GgufReader): WordTokenizer {
    const tokens = readTokens(r);
    return new WordTokenizer(tokens, readSpecialIds(r, tokens.length), r.source);
  }

  /** Words → ids; an unknown word, or the text of a special token ("<bos>"), is <unk>. */
  encode(text: string): number[] {
    return splitWords(text).map((w) => {
      const id = this.ids.get(w);
      return id === undefined || this.silent.has(id) ? this.unkId : id;
    });
  }

  decode(ids: readonly number[]): string {
    const d = this.streamDecoder();
    let s = '';
    for (const id of ids) s += d.push(id);
    return s;
  }

  token(id: number): string {
    const t = this.tokens[id];
    if (t === undefined) throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
    return t;
  }

  streamDecoder(): StreamDecoder {
    let first = true;
    return {
      push: (id: number): string => {
        const t = this.token(id);
        if (this.silent.has(id)) return '';
        const piece = first ? t : ` ${t}`;
        first = false;
        return piece;
      },
      end: (): string => '',
    };
  }
}
