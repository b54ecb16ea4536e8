/**
 * The GPT-2 vocabulary a converted R1 model carries (tokenizer.ggml.* metadata, read by
 * src/model/tokenizer/gpt2-bpe.ts). Sources, first found wins:
 * 1. an explicit path: a Hugging Face `tokenizer.json`, or a directory with `vocab.json` + `merges.txt`
 *    (or `tokenizer.json`);
 * 2. the same files next to the checkpoint;
 * 3. js-tiktoken's r50k_base ranks (GPT-2's vocabulary), when that package is installed.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BitmarError } from '../../errors.js';
import { gpt2VocabFromTiktoken } from '../tokenizer/gpt2-bpe.js';

export const GPT2_EOS = '<|endoftext|>';

export interface Gpt2Vocab {
  /** Token strings in GPT-2's byte alphabet, by id. */
  readonly tokens: readonly string[];
  /** "left right" merges, by priority. */
  readonly merges: readonly string[];
  /** Id of <|endoftext|> (bos = eos = pad = unk in R1). */
  readonly eosId: number;
  /** Where it came from (for messages). */
  readonly source: string;
}

function tokErr(message: string): BitmarError {
  return new BitmarError('BITMAR_ERR_TOKENIZER', message);
}

function fromVocabMap(vocab: Record<string, number>, merges: string[], source: string): Gpt2Vocab {
  const tokens: string[] = [];
  for (const [t, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0) throw tokErr(`${source}: token ${JSON.stringify(t)} has id ${id}`);
    tokens[id] = t;
  }
  for (let i = 0; i < tokens.length; i++) if (tokens[i] === undefined) throw tokErr(`${source}: no token has id ${i}`);
  const eosId = tokens.indexOf(GPT2_EOS);
  return { tokens, merges, eosId: eosId >= 0 ? eosId : tokens.length - 1, source };
}

/** A Hugging Face tokenizer.json (model.vocab, model.merges as "a b" strings or [a, b] pairs). */
export function readTokenizerJson(path: string): Gpt2Vocab {
  let j: { model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] }; added_tokens?: { id: number; content: string }[] };
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as typeof j;
  } catch (e) {
    throw tokErr(`${path}: cannot read tokenizer.json (${(e as Error).message})`);
  }
  const m = j.model;
  if (!m || m.type !== 'BPE' || !m.vocab || !Array.isArray(m.merges)) throw tokErr(`${path}: not a BPE tokenizer.json (needs model.type "BPE", model.vocab, model.merges)`);
  const vocab = { ...m.vocab };
  for (const a of j.added_tokens ?? []) vocab[a.content] = a.id;
  return fromVocabMap(vocab, m.merges.map((x) => (Array.isArray(x) ? `${x[0]} ${x[1]}` : x)), path);
}

/** GPT-2's vocab.json + merges.txt. */
export function readVocabAndMerges(dir: string): Gpt2Vocab {
  const vPath = join(dir, 'vocab.json');
  const mPath = join(dir, 'merges.txt');
  let vocab: Record<string, number>;
  let mergesText: string;
  try {
    vocab = JSON.parse(readFileSync(vPath, 'utf8')) as Record<string, number>;
    mergesText = readFileSync(mPath, 'utf8');
  } catch (e) {
    throw tokErr(`${dir}: cannot read vocab.json and merges.txt (${(e as Error).message})`);
  }
  const merges = mergesText.split('\n').filter((l) => l.length > 0 && !l.startsWith('#version'));
  return fromVocabMap(vocab, merges, `${vPath} + ${mPath}`);
}

/** The files of `dir`, if it holds a tokenizer. */
function fromDirectory(dir: string): Gpt2Vocab | undefined {
  if (existsSync(join(dir, 'tokenizer.json'))) return readTokenizerJson(join(dir, 'tokenizer.json'));
  if (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt'))) return readVocabAndMerges(dir);
  return undefined;
}

/** GPT-2 from js-tiktoken's r50k_base ranks (a devDependency of this package). */
export async function tiktokenGpt2(): Promise<Gpt2Vocab> {
  let ranks: { bpe_ranks: string; special_tokens: Record<string, number> };
  try {
    const mod = (await import('js-tiktoken/ranks/r50k_base')) as { default: typeof ranks };
    ranks = mod.default;
  } catch (e) {
    throw tokErr(
      `no GPT-2 vocabulary found: pass --tokenizer with a Hugging Face gpt2 tokenizer.json (or a directory holding vocab.json and merges.txt), ` +
        `or install js-tiktoken (npm install js-tiktoken) (${(e as Error).message.split('\n')[0]})`,
    );
  }
  const { tokens, merges } = gpt2VocabFromTiktoken(ranks.bpe_ranks, ranks.special_tokens);
  return { tokens, merges, eosId: tokens.indexOf(GPT2_EOS), source: 'js-tiktoken r50k_base' };
}

/** Find the vocabulary: `explicit` (file or directory), else next to the checkpoint, else js-tiktoken. */
export async function findGpt2Vocab(explicit: string | undefined, checkpointDir: string): Promise<Gpt2Vocab> {
  if (explicit !== undefined) {
    if (!existsSync(explicit)) throw tokErr(`--tokenizer ${explicit} does not exist`);
    if (statSync(explicit).isDirectory()) {
      const v = fromDirectory(explicit);
      if (v === undefined) throw tokErr(`${explicit} holds neither tokenizer.json nor vocab.json + merges.txt`);
      return v;
    }
    return readTokenizerJson(explicit);
  }
  return fromDirectory(checkpointDir) ?? tiktokenGpt2();
}

/**
 * The vocabulary for a model with `vocabSize` lm_head rows. Equal sizes: as is. A smaller model
 * (random test models) gets the first vocabSize−1 GPT-2 tokens and the merges that build them
 * (GPT-2 ranks are prefix-closed), then <|endoftext|> at vocabSize−1; the note says so.
 */
export function fitVocab(v: Gpt2Vocab, vocabSize: number): { vocab: Gpt2Vocab; note?: string } {
  if (v.tokens.length === vocabSize) return { vocab: v };
  if (vocabSize > v.tokens.length) {
    throw tokErr(`the model has ${vocabSize} output rows but the tokenizer (${v.source}) has ${v.tokens.length} tokens: pass --tokenizer with the model's own vocabulary`);
  }
  const keep = vocabSize - 1;
  const tokens = [...v.tokens.slice(0, keep), GPT2_EOS];
  const have = new Set(tokens);
  const merges = v.merges.filter((m) => {
    const sp = m.indexOf(' ');
    return have.has(m.slice(0, sp) + m.slice(sp + 1)) && have.has(m.slice(0, sp)) && have.has(m.slice(sp + 1));
  });
  return {
    vocab: { tokens, merges, eosId: keep, source: `${v.source}, first ${keep} tokens` },
    note: `the model has ${vocabSize} output rows, fewer than the tokenizer's ${v.tokens.length}: using its first ${keep} tokens (and their ${merges.length} merges) plus <|endoftext|> at ${keep} (a test-model convention, docs/convert.md)`,
  };
}
