import assert from 'node:assert/strict';
import { Tiktoken } from 'js-tiktoken/lite';
import r50k from 'js-tiktoken/ranks/r50k_base';
import { GgufReader } from '../../../src/model/gguf/reader.js';
import { gv, writeGguf } from '../../../src/model/gguf/writer.js';
import { Gpt2Tokenizer, gpt2VocabFromTiktoken } from '../../../src/model/tokenizer/gpt2-bpe.js';
import { loadTokenizer } from '../../../src/model/tokenizer/load-tokenizer.js';

const CORPUS = [
  'a small red circle on the left',
  'Hello, world! How are you doing today?',
  "It's 3:45pm — we'll meet at the café. They've said I'm late; you'd agree?",
  '   leading and trailing spaces   ',
  'multiple\n\nnewlines\tand\ttabs  \n',
  'numbers 1234567890 3.14159 -42 1e-5 0x1F',
  'unicode: naïve façade Ελληνικά русский 日本語テキスト 한국어 😀👍🏽 🇩🇪',
  'code: const x = y?.z ?? [1, 2, 3].map((v) => v * 2);',
  'URL https://example.com/path?q=1&r=2#frag and email a.b@c.de',
  "'s 't 're 've 'm 'll 'd at starts: 'sup",
  'supercalifragilisticexpialidocious antidisestablishmentarianism',
  '',
];

describe('gpt2 BPE tokenizer (against js-tiktoken r50k_base)', function () {
  this.timeout(60_000);
  const tk = new Tiktoken(r50k);
  const { tokens, merges } = gpt2VocabFromTiktoken(r50k.bpe_ranks, r50k.special_tokens);
  const special = { bosId: 50256, eosId: 50256, padId: 50256, unkId: 50256 };
  const tok = new Gpt2Tokenizer(tokens, merges, special);

  it('converts the ranks to 50257 tokens and 50000 merges (GPT-2 merges.txt size)', () => {
    assert.equal(tokens.length, 50257);
    assert.equal(merges.length, 50000);
    assert.equal(tokens[50256], '<|endoftext|>');
    assert.equal(tokens[220], 'Ġ');
    assert.equal(merges[0], 'Ġ t');
  });

  it('encodes exactly as tiktoken', () => {
    for (const text of CORPUS) assert.deepEqual(tok.encode(text), tk.encode(text), JSON.stringify(text));
  });

  it('encodes random byte-soup text exactly as tiktoken', () => {
    let s = 12345;
    const rnd = (n: number): number => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n);
    const alphabet = ['a', 'e', 'th', ' ', '  ', '\n', '.', ',', "'", 's', '9', 'é', '日', '😀', 'Q', '-', '_', '\t', 'ing', ' the'];
    for (let k = 0; k < 200; k++) {
      const text = Array.from({ length: 1 + rnd(30) }, () => alphabet[rnd(alphabet.length)]).join('');
      assert.deepEqual(tok.encode(text), tk.encode(text), JSON.stringify(text));
    }
  });

  it('decodes ids back to the text, and streams split characters whole', () => {
    for (const text of CORPUS) assert.equal(tok.decode(tok.encode(text)), text);
    const ids = tok.encode('😀');
    assert.ok(ids.length > 1, 'an emoji spans several byte tokens');
    const d = tok.streamDecoder();
    const pieces = ids.map((id) => d.push(id));
    assert.deepEqual(pieces.slice(0, -1).every((p) => p === ''), true);
    assert.equal(pieces.join('') + d.end(), '😀');
    assert.equal(tok.decode([50256, ...tok.encode('hi')]), 'hi', '<|endoftext|> is dropped');
  });

  it('loads from GGUF metadata', () => {
    const r = GgufReader.fromBytes(
      writeGguf(
        [
          ['tokenizer.ggml.model', gv.str('gpt2')],
          ['tokenizer.ggml.tokens', gv.strings(tokens)],
          ['tokenizer.ggml.merges', gv.strings(merges)],
          ['tokenizer.ggml.bos_token_id', gv.u32(50256)],
          ['tokenizer.ggml.eos_token_id', gv.u32(50256)],
          ['tokenizer.ggml.padding_token_id', gv.u32(50256)],
          ['tokenizer.ggml.unknown_token_id', gv.u32(50256)],
        ],
        [],
      ),
    );
    const t = loadTokenizer(r);
    assert.equal(t.kind, 'gpt2');
    assert.deepEqual(t.encode(CORPUS[1]!), tk.encode(CORPUS[1]!));
  });

  it('rejects a merge that makes no token', () => {
    assert.throws(() => new Gpt2Tokenizer(tokens, [...merges, 'Ġ zzzzqq'], special), /merge 50000 "Ġ zzzzqq" makes a string that is not a token/);
  });
});
