import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { EVAL_SEED, STREAMS, exporterHeldoutSeed, sceneSeed, trainingSampleSeeds } from '../../src/eval/seeds.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { deriveSeed } from '../../src/sources/synthetic/shapes-world.js';

describe('eval seed', () => {
  it('is 0x5EEDE7A1 and is not a training seed (training uses small seeds 1, 2, …)', () => {
    assert.equal(EVAL_SEED, 0x5eede7a1);
    assert.ok(EVAL_SEED > 1_000_000, 'far above the small seeds of the training commands');
    for (let s = 1; s <= 10_000; s++) assert.notEqual(exporterHeldoutSeed(s), EVAL_SEED, `exporter held-out stream of seed ${s}`);
  });

  it('is passed as --seed to no command or script under tools/train', () => {
    const dir = join(PACKAGE_ROOT, 'tools', 'train');
    const files = readdirSync(dir).filter((f) => /\.(py|ts|md|sh)$/.test(f));
    assert.ok(files.length > 0);
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8').toLowerCase();
      for (const spelling of [String(EVAL_SEED), '0x5eede7a1', '0x5eed_e7a1']) {
        assert.ok(!new RegExp(`--seed[ =]+${spelling}\\b`).test(text), `${f} passes the eval seed as --seed`);
        assert.ok(!new RegExp(`seed\\s*=\\s*${spelling}\\b`).test(text), `${f} assigns the eval seed`);
      }
    }
  });

  it('draws no eval scene from a training sample seed (20,000 eval scenes × 8 training seeds × 200,000 samples)', function () {
    this.timeout(60_000);
    const training = new Set<number>();
    for (const s of [1, 2, 3, 4, 5, 999, exporterHeldoutSeed(1), exporterHeldoutSeed(2)]) for (const v of trainingSampleSeeds(s, 200_000)) training.add(v);
    for (let i = 0; i < 20_000; i++) assert.ok(!training.has(sceneSeed(EVAL_SEED, i)), `eval scene ${i} shares its seed with a training sample`);
  });

  it('gives every part of the eval its own stream', () => {
    const seeds = Object.values(STREAMS).map((s) => deriveSeed(EVAL_SEED, s));
    assert.equal(new Set(seeds).size, seeds.length);
    assert.equal(sceneSeed(EVAL_SEED, 7), deriveSeed(EVAL_SEED, 7));
  });
});
