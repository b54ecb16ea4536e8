import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSafetensors, writeSafetensors } from '../../src/model/convert/safetensors.js';
import { REPO_ROOT, spawnCli } from '../helpers/spawn-node.js';

/** `bitmar-node convert` as a user runs it (from source), on the committed R1 fixture checkpoint. */
describe('bitmar-node convert', function () {
  this.timeout(120_000);
  const fixtures = join(REPO_ROOT, 'test', 'fixtures', 'r1');
  const dir = mkdtempSync(join(tmpdir(), 'bitmar-convert-cli-'));

  it('converts a safetensors checkpoint and reports the inferred model; the result is the fixture GGUF', async () => {
    const out = join(dir, 'tiny.gguf');
    const cli = spawnCli(['convert', join(fixtures, 'tiny-r1.safetensors'), '--out', out, '--name', 'bitmar-r1-tiny-random']);
    assert.equal(await cli.exited, 0, cli.stderr());
    assert.match(cli.stdout(), /d=32, 2\+2 layers, heads 4\/4\/4, K=8, vocab 512, context 64, vision 768→16→32/);
    assert.match(cli.stdout(), /51 BitLinears, .* \(\d+\.\d% zero\)/);
    assert.match(cli.stderr(), /note: .*first 511 tokens/);
    assert.deepEqual(readFileSync(out), readFileSync(join(fixtures, 'tiny-r1.gguf')));
  });

  it('fails with exit code 1 and the key lists for a checkpoint with wrong keys', async () => {
    const st = parseSafetensors(readFileSync(join(fixtures, 'tiny-r1.safetensors')));
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(
      bad,
      writeSafetensors(
        [...st.tensors.values()].map((t) => ({ name: t.name === 'text_to_episode.weight' ? 'text_to_episodes.weight' : t.name, dtype: t.dtype as 'F32', shape: t.shape, data: new Uint8Array(t.bytes) })),
      ),
    );
    const cli = spawnCli(['convert', bad, '--out', join(dir, 'bad.gguf')]);
    assert.equal(await cli.exited, 1);
    assert.match(cli.stderr(), /BITMAR_ERR_MODEL_CHECKPOINT_KEYS/);
    assert.match(cli.stderr(), /unexpected keys \(1\):\n\s+text_to_episodes\.weight/);
    assert.match(cli.stderr(), /missing keys \(1\):\n\s+text_to_episode\.weight/);
  });
});
