/**
 * Fuzz: configuration files (and BITMAR_* environment values) through `loadConfig`
 * (src/config/load.ts): YAML built from random keys and values of every type, the shipped files
 * mutated byte by byte, YAML features a parser can choke on (alias bombs, tags, merge keys, deep
 * nesting, complex keys, duplicate keys), and random text.
 * Contract: a frozen config that the schema accepts again, or BITMAR_ERR_CONFIG_INVALID /
 * BITMAR_ERR_CONFIG_FILE with a message. Never another exception.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { envNameOf, loadConfig } from '../../src/config/load.js';
import { configSchema, parameterDescriptors, type BitmarConfig } from '../../src/config/schema.js';
import { bytesFrom, expectBitmar, FUZZ_RUNS, fuzzParams, report, Tally, watchMemory } from './fuzz-kit.js';

const KEYS = parameterDescriptors().map((d) => d.name);
const shipped = (name: string): Uint8Array => readFileSync(fileURLToPath(new URL(`../../config/${name}`, import.meta.url)));

/** A value of any YAML-representable type, edge numbers included. */
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.integer(),
    fc.integer({ min: -2, max: 70_000 }),
    fc.double(),
    fc.constantFrom(0, -0, 1e400, Number.NaN, Number.MAX_SAFE_INTEGER + 2, 65536, 4096),
    fc.string({ maxLength: 16 }),
    fc.constantFrom('auto', 'native', 'mqtt', 'synthetic', 'lru', 'ttl', 'never', 'true', 'off', '', '0x10', '1e3', '~', 'null'),
    fc.boolean(),
    fc.constant(null),
  ),
  node: fc.oneof({ depthSize: 'small' }, tie('leaf'), fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 6 }), tie('node'), { maxKeys: 3 })),
})).node;

/** An object with some schema keys (dotted → nested) set to random values, plus stray keys. */
const structured = fc
  .tuple(fc.array(fc.tuple(fc.oneof({ arbitrary: fc.constantFrom(...KEYS), weight: 9 }, { arbitrary: fc.string({ maxLength: 10 }), weight: 1 }), value), { maxLength: 6 }), fc.boolean())
  .map(([pairs, sectionsAsScalars]) => {
    const doc: Record<string, unknown> = {};
    for (const [key, v] of pairs) {
      const parts = key.split('.');
      let cur = doc;
      for (const p of parts.slice(0, -1)) {
        if (typeof cur[p] !== 'object' || cur[p] === null || Array.isArray(cur[p])) cur[p] = sectionsAsScalars && Math.abs(key.length % 7) === 0 ? 3 : {};
        if (typeof cur[p] !== 'object') break;
        cur = cur[p] as Record<string, unknown>;
      }
      if (typeof cur === 'object') cur[parts[parts.length - 1]!] = v;
    }
    return stringify(doc);
  });

const NASTY = [
  'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n',
  'model: !!js/function "function () { return 1 }"\n',
  'model:\n  path: !!binary aGVsbG8=\n',
  'log: &l { level: debug }\nmetrics: *l\n',
  'base: &b { port: 0 }\nmetrics:\n  <<: *b\n  host: 0.0.0.0\n',
  'pipeline: ' + '['.repeat(200) + ']'.repeat(200) + '\n',
  '? [complex, key]\n: 1\n',
  'mqtt:\n  url: a\n  url: b\n',
  'stateDir: !!timestamp 2001-12-14t21:59:43.10-05:00\n',
  '%YAML 1.1\n---\nmemory: { enabled: yes, slots: 0o777 }\n',
  '--- |\n  just a block scalar\n',
  'generation:\n  prompt: "' + 'x'.repeat(2000) + '"\n',
  'model: { path: "\\ud800" }\n',
  '\ufeffmodel: { threads: 2 }\n',
  'metrics: { port: 1e400 }\n',
  '- a list\n- at the root\n',
  '',
  '# only a comment\n',
].map((s) => new TextEncoder().encode(s));

const CORPUS = [shipped('bitmar.yaml'), shipped('bitmar.ros2.yaml'), ...NASTY];

const configText = fc.oneof(
  { arbitrary: structured.map((text) => ({ recipe: 'structured', bytes: new TextEncoder().encode(text) })), weight: 4 },
  { arbitrary: bytesFrom(CORPUS).map(({ recipe, bytes }) => ({ recipe, bytes })), weight: 5 },
  { arbitrary: fc.constantFrom(...NASTY).map((bytes) => ({ recipe: 'nasty', bytes })), weight: 1 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 120 }).map((s) => ({ recipe: 'text', bytes: new TextEncoder().encode(s) })), weight: 1 },
);

/** Sometimes a few BITMAR_* variables as well (their own coercion path). */
const env = fc.oneof(
  { arbitrary: fc.constant({}), weight: 4 },
  { arbitrary: fc.dictionary(fc.constantFrom(...KEYS.map(envNameOf), 'BITMAR_NODE_ID', 'BITMAR_MODEL'), fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('1', 'true', 'off', '-1', '1e9', ' ', 'NaN', '0x1f')), { maxKeys: 3 }), weight: 1 },
);

describe('fuzz: config files → loadConfig', function () {
  this.timeout(120_000);
  let dir: string;
  // A RAM file system when there is one: 10,000 writes to a slow disk take longer than the parsing.
  before(() => (dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bitmar-fuzz-config-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a frozen valid config, or CONFIG_INVALID / CONFIG_FILE, never a throw', () => {
    const file = join(dir, 'bitmar.yaml');
    const tally = new Tally();
    const mem = watchMemory();
    const t0 = performance.now();
    // The yaml package reports unresolved tags and stringified keys through process.emitWarning;
    // count them here instead of printing thousands of lines.
    const emitWarning = process.emitWarning;
    let warnings = 0;
    process.emitWarning = () => void warnings++;
    try {
      fc.assert(
        fc.property(configText, env, ({ recipe, bytes }, vars) => {
          writeFileSync(file, bytes);
          expectBitmar(
            tally,
            () => {
              const cfg: Readonly<BitmarConfig> = loadConfig({ file, env: vars, defaultFiles: [] });
              assert.ok(Object.isFrozen(cfg) && Object.isFrozen(cfg.pipeline), 'config is not frozen');
              assert.ok(configSchema.safeParse(cfg).success, 'loadConfig returned a config its own schema refuses');
            },
            ['BITMAR_ERR_CONFIG_INVALID', 'BITMAR_ERR_CONFIG_FILE'],
            recipe,
          );
          if (tally.total % 256 === 0) mem.sample();
        }),
        fuzzParams(),
      );
    } finally {
      process.emitWarning = emitWarning;
    }
    report('config files (loadConfig)', tally, `${mem.check()}, ${warnings} YAML warnings`, performance.now() - t0);
    assert.ok(tally.total >= FUZZ_RUNS);
  });
});
