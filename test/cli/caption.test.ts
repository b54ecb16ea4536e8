import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { captionFiles } from '../../src/cli/caption.js';
import { encodePng, encodePpm } from '../../src/sources/image/decode.js';
import { mulberry32, sampleScene } from '../../src/sources/synthetic/shapes-world.js';
import { renderScene } from '../../src/sources/synthetic/render.js';
import jpeg from 'jpeg-js';

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let buf = '';
  stream.on('data', (d: Buffer) => (buf += d.toString()));
  return { stream, text: () => buf };
}

describe('bitmar-node caption', function () {
  this.timeout(60_000);

  it('captions PNG, JPEG and PPM; a bad file gets an error line, the others still run, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bitmar-caption-'));
    const rng = mulberry32(3);
    const w = 200;
    const h = 150;
    const rgb = renderScene(sampleScene(rng, { width: w, height: h }), w, h, rng);
    const rgba = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) rgba.set([rgb[i * 3]!, rgb[i * 3 + 1]!, rgb[i * 3 + 2]!, 255], i * 4);
    writeFileSync(join(dir, 'a.png'), encodePng({ width: w, height: h, data: rgb }));
    writeFileSync(join(dir, 'b.jpg'), jpeg.encode({ width: w, height: h, data: Buffer.from(rgba) }, 90).data);
    writeFileSync(join(dir, 'c.ppm'), encodePpm({ width: w, height: h, data: rgb }));
    writeFileSync(join(dir, 'broken.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2, 3]));
    const out = collect();
    const err = collect();
    const files = ['a.png', 'b.jpg', 'broken.jpg', 'missing.png', 'c.ppm'].map((f) => join(dir, f));
    const code = await captionFiles(files, { json: true, prompt: 'how many shapes are there', kernels: 'typescript' }, out.stream, err.stream);
    assert.equal(code, 1);
    const lines = out.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 5);
    for (const i of [0, 1, 4]) {
      assert.deepEqual(Object.keys(lines[i]!).sort(), ['file', 'ms', 'prompt', 'text']);
      assert.equal(lines[i]!.prompt, 'how many shapes are there');
      assert.equal(typeof lines[i]!.text, 'string');
    }
    assert.match(String(lines[2]!.error), /BITMAR_ERR_IMAGE_DECODE/);
    assert.match(String(lines[3]!.error), /no such file/);
    assert.match(err.text(), /broken\.jpg: .*BITMAR_ERR_IMAGE_DECODE/);
    // PNG and PPM hold the same pixels: the same answer.
    assert.equal(lines[0]!.text, lines[4]!.text);
  });
});
