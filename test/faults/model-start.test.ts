/**
 * Fault: a missing or corrupt model at start. The real node must stop at once with a message that
 * names the file and the error code, and a non-zero exit status — not hang, not print a stack.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnCli } from '../helpers/spawn-node.js';
import { killNow } from './fault-node.js';

const MODEL = fileURLToPath(new URL('../../models/bitmar-stream-random.gguf', import.meta.url));

describe('faults: model file at start', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'bitmar-fault-model-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const cases: [string, () => string, RegExp][] = [
    ['a missing file', () => join(dir, 'missing.gguf'), /missing\.gguf does not exist.*\[BITMAR_ERR_MODEL_NOT_FOUND\]/],
    [
      'a truncated file',
      () => {
        const p = join(dir, 'truncated.gguf');
        writeFileSync(p, readFileSync(MODEL).subarray(0, 1000));
        return p;
      },
      /truncated\.gguf: truncated at byte 1000.*\[BITMAR_ERR_MODEL_FORMAT\]/,
    ],
    [
      'a file that is not GGUF',
      () => {
        const p = join(dir, 'photo.gguf');
        writeFileSync(p, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46]));
        return p;
      },
      /photo\.gguf: bad magic at byte 0.*not a GGUF file \[BITMAR_ERR_MODEL_FORMAT\]/,
    ],
    [
      'a GGUF whose tensors do not match its hyperparameters',
      () => {
        const p = join(dir, 'mismatch.gguf');
        const bytes = readFileSync(MODEL);
        const key = Buffer.from('bitmar-stream.feed_forward_length');
        const at = bytes.indexOf(key) + key.length + 4; // the u32 value after the type
        bytes.writeUInt32LE(bytes.readUInt32LE(at) * 2, at);
        writeFileSync(p, bytes);
        return p;
      },
      /mismatch\.gguf.*\[BITMAR_ERR_MODEL_MISMATCH\]/,
    ],
  ];

  for (const [name, make, expected] of cases) {
    it(`${name}: names the file and the code, exits 1`, async () => {
      const model = make();
      const node = spawnCli(['run', '--model', model, '--duration', '30', '--mqtt-port', '0', '--metrics-port', '0', '--state-dir', join(dir, 'state')]);
      try {
        const code = await Promise.race([node.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000))]);
        assert.equal(code, 1, `exit ${String(code)}; stderr: ${node.stderr()}`);
        assert.match(node.stderr(), expected);
        assert.doesNotMatch(node.stderr(), /^\s+at /m, 'a stack trace was printed');
      } finally {
        killNow(node);
      }
    });
  }
});
