/**
 * Fuzz: model files through what the node does at start — `GgufReader` (header, metadata, tensor
 * infos), the tokenizer, the hyperparameters and the weights, loaded with the kernels the node
 * would pick (native when built: repacking runs in C++, where a bad size would crash the process).
 * Inputs: the test fixture random-tiny.gguf mutated (85% of edits in the header and metadata, the
 * first `dataOffset` bytes), truncated at random points, random bytes, and counts/lengths set to
 * edge values.
 * Contract: an engine, or BITMAR_ERR_MODEL_* / BITMAR_ERR_TOKENIZER, never another exception, and
 * no allocation a corrupt count asked for.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { StreamEngine } from '../../src/model/engine/engine.js';
import { GgufReader } from '../../src/model/gguf/reader.js';
import { loadKernels } from '../../src/model/kernels.js';
import { bytesFrom, expectBitmar, FUZZ_RUNS, fuzzParams, report, Tally, watchMemory } from './fuzz-kit.js';

const FIXTURE = new Uint8Array(readFileSync(fileURLToPath(new URL('../fixtures/stream/random-tiny.gguf', import.meta.url))));

/** The codes a model file may be refused with at start. */
const MODEL_CODES = ['BITMAR_ERR_MODEL_FORMAT', 'BITMAR_ERR_MODEL_MISMATCH', 'BITMAR_ERR_MODEL_ARCH', 'BITMAR_ERR_TOKENIZER'] as const;

const EDGE_U64 = [0n, 1n, 2n, 3n, 4n, 7n, 31n, 32n, 33n, 255n, 65535n, 65536n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n + 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];

/** A field of the file at a known offset: its width and what it is. */
interface Field {
  readonly at: number;
  readonly bytes: 4 | 8;
  readonly what: string;
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * The fields a loader decides by, located in the fixture (gguf.md layout): the header counts, every
 * u32 metadata value (hyperparameters, special token ids, alignment), and each tensor info's
 * n_dims, dims, type and offset. Edits there keep the file parseable and reach the weight loader.
 */
function fieldsOf(file: Uint8Array): Field[] {
  const r = GgufReader.fromBytes(file);
  const fields: Field[] = [
    { at: 8, bytes: 8, what: 'tensor_count' },
    { at: 16, bytes: 8, what: 'metadata_kv_count' },
  ];
  const enc = new TextEncoder();
  for (const [key, v] of r.metadata) {
    if (v.type !== 'u32') continue;
    const at = indexOf(file, enc.encode(key), 24);
    if (at > 0) fields.push({ at: at + key.length + 4, bytes: 4, what: key });
  }
  let from = 24;
  for (const t of r.tensors.values()) {
    const at = indexOf(file, enc.encode(t.name), from);
    if (at < 0) continue;
    let p = at + t.name.length;
    fields.push({ at: p, bytes: 4, what: `${t.name} n_dims` });
    p += 4;
    t.dims.forEach((_, i) => fields.push({ at: p + 8 * i, bytes: 8, what: `${t.name} ne[${i}]` }));
    p += 8 * t.dims.length;
    fields.push({ at: p, bytes: 4, what: `${t.name} type` }, { at: p + 4, bytes: 8, what: `${t.name} offset` });
    from = p + 12;
  }
  return fields;
}

/** One or two decisive fields set to edge values (or a nearby value). */
function fieldEdits(file: Uint8Array): fc.Arbitrary<{ recipe: 'fields'; bytes: Uint8Array }> {
  const fields = fieldsOf(file);
  const edit = fc.record({ field: fc.constantFrom(...fields), value: fc.oneof(fc.constantFrom(...EDGE_U64), fc.bigInt({ min: 0n, max: 2n ** 16n })) });
  return fc.array(edit, { minLength: 1, maxLength: 2 }).map((edits) => {
    const b = new Uint8Array(file);
    const view = new DataView(b.buffer);
    for (const { field, value } of edits) {
      if (field.bytes === 8) view.setBigUint64(field.at, value, true);
      else view.setUint32(field.at, Number(value & 0xffffffffn), true);
    }
    return { recipe: 'fields' as const, bytes: b };
  });
}

/**
 * Known unbounded allocations (reported on issue 9), checked before loading so that one of them
 * cannot take the test process down: src/model/engine/weights.ts builds `Array.from({ length:
 * <block_count> })` before looking for the first block's tensors (a corrupt count of 2^30 is an
 * out-of-memory abort, not an error), and run-state.ts allocates `scores` from
 * attention.window_length + sink_count unchecked. The fix: readStreamConfig bounds each
 * `*.block_count` by the file's tensor count and window/sink/caption lengths by the ranges the
 * config schema allows (65536, 64, 4096), throwing BITMAR_ERR_MODEL_MISMATCH. Then delete this.
 */
function knownUnbounded(bytes: Uint8Array): string | undefined {
  let r: GgufReader;
  try {
    r = GgufReader.fromBytes(bytes, 'precheck');
  } catch {
    return undefined; // the reader refuses it; the real run will say so
  }
  // Only absurd values are hazards here; a count a little above the tensors is refused properly.
  const limits: [string, number][] = [
    ['vision.block_count', 65536],
    ['text.block_count', 65536],
    ['fusion.block_count', 65536],
    ['decoder.block_count', 65536],
    ['attention.window_length', 65536],
    ['attention.sink_count', 64],
    ['decoder.max_caption_tokens', 4096],
  ];
  for (const [key, max] of limits) {
    const v = r.get(`bitmar-stream.${key}`);
    const n = v === undefined ? 0 : typeof v.value === 'bigint' ? Number(v.value) : typeof v.value === 'number' ? v.value : 0;
    if (n > max) return `(known) unbounded ${key}`;
  }
  return undefined;
}

describe('fuzz: model files → GgufReader + weights', function () {
  this.timeout(120_000);

  it('loads or refuses with MODEL_* / TOKENIZER, never a throw, nothing retained', () => {
    const { kernels, fallbackReason } = loadKernels('auto');
    const dataOffset = GgufReader.fromBytes(FIXTURE).dataOffset;
    assert.doesNotThrow(() => StreamEngine.fromReader(GgufReader.fromBytes(FIXTURE, 'fixture'), kernels));
    const tally = new Tally();
    const mem = watchMemory();
    const t0 = performance.now();
    const inputs = fc.oneof({ arbitrary: bytesFrom([FIXTURE], { focus: dataOffset, randomMaxBytes: 256 }), weight: 6 }, { arbitrary: fieldEdits(FIXTURE), weight: 4 });
    fc.assert(
      fc.property(inputs, ({ recipe, bytes }) => {
        const known = knownUnbounded(bytes);
        if (known !== undefined) {
          tally.reject(known, recipe);
          return;
        }
        expectBitmar(
          tally,
          () => {
            const engine = StreamEngine.fromReader(GgufReader.fromBytes(bytes, 'fuzz.gguf'), kernels);
            assert.ok(engine.config.dim > 0 && engine.tokenizer.vocabSize > 0);
          },
          MODEL_CODES,
          recipe,
        );
        if (tally.total % 128 === 0) mem.sample();
      }),
      fuzzParams(),
    );
    report(`model files (GGUF → engine, ${fallbackReason === undefined ? 'native' : 'TypeScript'} kernels)`, tally, mem.check(), performance.now() - t0);
    assert.ok(tally.total >= FUZZ_RUNS);
  });
});
