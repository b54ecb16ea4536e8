/** The tokenizer interface the engine uses, and the loader that picks one from GGUF metadata. */
import { BitmarError } from '../../errors.js';
import type { GgufReader } from '../gguf/reader.js';

/** Turns streamed token ids into text pieces; pieces joined equal `decode` of all ids so far. */
export interface StreamDecoder {
  /** The text this token adds (may be '' for a special token or an incomplete UTF-8 sequence). */
  push(id: number): string;
  /** Whatever is still held at the end (an incomplete UTF-8 tail becomes U+FFFD). */
  end(): string;
}

export interface Tokenizer {
  /** `tokenizer.ggml.model`: "word" or "gpt2". */
  readonly kind: string;
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  /** Text → ids (no <bos>/<eos> added). */
  encode(text: string): number[];
  /** Ids → text; special tokens (<pad>, <bos>, <eos>) are dropped. Throws RangeError on an id ≥ vocabSize. */
  decode(ids: readonly number[]): string;
  /** The stored string of one token (for logs and the per-token `piece`). */
  token(id: number): string;
  streamDecoder(): StreamDecoder;
}

/** Special token ids from `tokenizer.ggml.*_token_id`, checked against the vocabulary size. */
export interface SpecialIds {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
}

export function tokenizerError(source: string, message: string): BitmarError {
  return new BitmarError('BITMAR_ERR_TOKENIZER', `${source}: ${message}`);
}

/** Read `tokenizer.ggml.{bos,eos,padding,unknown}_token_id` and check each is < vocabSize. */
export function readSpecialIds(r: GgufReader, vocabSize: number): SpecialIds {
  const id = (key: string): number => {
    const full = `tokenizer.ggml.${key}`;
    if (r.get(full) === undefined) throw tokenizerError(r.source, `metadata "${full}" is missing`);
    let v: number;
    try {
      v = r.getUint(full);
    } catch (e) {
      throw tokenizerError(r.source, (e as Error).message.replace(`${r.source}: `, ''));
    }
    if (v >= vocabSize) throw tokenizerError(r.source, `${full} = ${v} is outside the vocabulary (size ${vocabSize})`);
    return v;
  };
  return { bosId: id('bos_token_id'), eosId: id('eos_token_id'), padId: id('padding_token_id'), unkId: id('unknown_token_id') };
}

export function readTokens(r: GgufReader): readonly string[] {
  if (r.get('tokenizer.ggml.tokens') === undefined) throw tokenizerError(r.source, 'metadata "tokenizer.ggml.tokens" is missing');
  let tokens: readonly string[];
  try {
    tokens = r.getStringArray('tokenizer.ggml.tokens');
  } catch (e) {
    throw tokenizerError(r.source, (e as Error).message.replace(`${r.source}: `, ''));
  }
  if (tokens.length === 0) throw tokenizerError(r.source, 'tokenizer.ggml.tokens is empty');
  return tokens;
}
