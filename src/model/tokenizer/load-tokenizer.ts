/** Picks the tokenizer named by `tokenizer.ggml.model` in a GGUF file. */
import type { GgufReader } from '../gguf/reader.js';
import { Gpt2Tokenizer } from './gpt2-bpe.js';
import { tokenizerError, type Tokenizer } from './tokenizer.js';
import { WordTokenizer } from './word-tokenizer.js';

/** Build the file's tokenizer; throws BITMAR_ERR_TOKENIZER for a missing or unknown model. */
export function loadTokenizer(r: GgufReader): Tokenizer {
  const model = r.get('tokenizer.ggml.model');
  if (model === undefined) throw tokenizerError(r.source, 'metadata "tokenizer.ggml.model" is missing');
  if (model.type !== 'string') throw tokenizerError(r.source, `tokenizer.ggml.model must be a string, found ${model.type}`);
  switch (model.value) {
    case 'word':
      return WordTokenizer.fromGguf(r);
    case 'gpt2':
      return Gpt2Tokenizer.fromGguf(r);
    default:
      throw tokenizerError(r.source, `tokenizer.ggml.model "${model.value}" is not supported (supported: "word", "gpt2")`);
  }
}
