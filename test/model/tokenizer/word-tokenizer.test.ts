import assert from 'node:assert/strict';
import { BitmarError } from '../../../src/errors.js';
import { GgufReader } from '../../../src/model/gguf/reader.js';
import { gv, writeGguf } from '../../../src/model/gguf/writer.js';
import { loadTokenizer } from '../../../src/model/tokenizer/load-tokenizer.js';
import { WordTokenizer, splitWords } from '../../../src/model/tokenizer/word-tokenizer.js';

const TOKENS = ['<pad>', '<bos>', '<eos>', '<unk>', 'a', 'red', 'circle', 'is', 'there', 'on', 'the', 'left'];

function gguf(meta: Record<string, ReturnType<typeof gv.str>>): GgufReader {
  return GgufReader.fromBytes(writeGguf(Object.entries(meta), []), 'tok.gguf');
}

const META = {
  'tokenizer.ggml.model': gv.str('word'),
  'tokenizer.ggml.tokens': gv.strings(TOKENS),
  'tokenizer.ggml.bos_token_id': gv.u32(1),
  'tokenizer.ggml.eos_token_id': gv.u32(2),
  'tokenizer.ggml.padding_token_id': gv.u32(0),
  'tokenizer.ggml.unknown_token_id': gv.u32(3),
};

describe('word tokenizer', () => {
  const tok = loadTokenizer(gguf(META));

  it('normalises as docs §5: lower-case, trim, strip ?.!, and split on whitespace', () => {
    assert.deepEqual(splitWords('  Is there a RED circle?  '), ['is', 'there', 'a', 'red', 'circle']);
    assert.deepEqual(splitWords('a, red. circle!\ton\nthe   left'), ['a', 'red', 'circle', 'on', 'the', 'left']);
    assert.deepEqual(splitWords(' ?!., '), []);
    assert.deepEqual(splitWords(''), []);
  });

  it('encodes words to ids and unknown words to <unk>', () => {
    assert.equal(tok.kind, 'word');
    assert.equal(tok.vocabSize, 12);
    assert.deepEqual(tok.encode('Is there a red circle?'), [7, 8, 4, 5, 6]);
    assert.deepEqual(tok.encode('a blue circle'), [4, 3, 6]);
    assert.deepEqual(tok.encode('<bos>'), [3], 'specials are not words: "<bos>" is unknown text');
  });

  it('decodes ids to text, dropping <pad> <bos> <eos>, and streams the same pieces', () => {
    assert.equal(tok.decode([1, 4, 5, 6, 9, 10, 11, 2, 0]), 'a red circle on the left');
    assert.equal(tok.decode([4, 3]), 'a <unk>');
    const d = tok.streamDecoder();
    assert.deepEqual([1, 4, 5, 2, 6].map((id) => d.push(id)), ['', 'a', ' red', '', ' circle']);
    assert.throws(() => tok.decode([12]), /token id 12 is outside the vocabulary \(size 12\)/);
  });

  it('round-trips normalised text', () => {
    for (const s of ['a red circle', 'is there a red circle on the left']) assert.equal(tok.decode(tok.encode(s)), s);
  });

  it('rejects bad tokenizer metadata with BITMAR_ERR_TOKENIZER', () => {
    const bad = (meta: Record<string, ReturnType<typeof gv.str>>, re: RegExp): void =>
      assert.throws(() => loadTokenizer(gguf(meta)), (e: unknown) => e instanceof BitmarError && e.code === 'BITMAR_ERR_TOKENIZER' && re.test(e.message));
    bad({ ...META, 'tokenizer.ggml.model': gv.str('sentencepiece') }, /tok\.gguf: tokenizer\.ggml\.model "sentencepiece" is not supported/);
    const { ['tokenizer.ggml.model']: _m, ...noModel } = META;
    bad(noModel, /"tokenizer\.ggml\.model" is missing/);
    const { ['tokenizer.ggml.unknown_token_id']: _u, ...noUnk } = META;
    bad(noUnk, /"tokenizer\.ggml\.unknown_token_id" is missing/);
    bad({ ...META, 'tokenizer.ggml.tokens': gv.strings([...TOKENS, 'red']) }, /token "red" appears twice \(ids 5 and 12\)/);
    bad({ ...META, 'tokenizer.ggml.tokens': gv.strings([...TOKENS, 'two words']) }, /token 12 "two words" is empty or contains whitespace/);
    bad({ ...META, 'tokenizer.ggml.tokens': gv.array({ itemType: 'u32', items: [1] }) }, /must be an array of strings, found array of u32/);
    bad({ ...META, 'tokenizer.ggml.bos_token_id': gv.u32(12) }, /bos_token_id = 12 is outside the vocabulary \(size 12\)/);
  });

  it('can be built directly', () => {
    const t = new WordTokenizer(TOKENS, { bosId: 1, eosId: 2, padId: 0, unkId: 3 });
    assert.deepEqual(t.encode('the left'), [10, 11]);
  });
});
