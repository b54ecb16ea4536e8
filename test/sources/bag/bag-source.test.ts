/**
 * `--source bag:FILE.mcap` on the committed fixtures (tools/make-mcap-fixtures.ts): zstd and lz4
 * chunks, every image encoding of the fixtures, prompts, pacing by log time, and a bag full of bad
 * input that must be counted and skipped while the good frames around it come through.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { McapIndexedReader } from '@mcap/core';
import { lastValueFrom, toArray } from 'rxjs';
import { createBagSource, type BagSourceOptions } from '../../../src/sources/bag/bag-source.js';
import type { DropEvent, Frame, Prompt } from '../../../src/types.js';
import { fixtureGenerator, makeFixtures } from '../../../tools/make-mcap-fixtures.js';

const fixture = (name: string): string => new URL(`../../fixtures/bags/${name}`, import.meta.url).pathname;

/** Replays with the production JPEG/PNG decoder (src/sources/image/decode.ts). */
async function replay(options: BagSourceOptions) {
  const src = createBagSource({ rate: 0, ...options });
  const prompts: Prompt[] = [];
  const drops: DropEvent[] = [];
  src.prompts$.subscribe((p) => prompts.push(p));
  src.drops$.subscribe((d) => drops.push(d));
  const frames = await lastValueFrom(src.frames$.pipe(toArray()));
  return { frames, prompts, drops, report: await src.done };
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

describe('sources/bag: MCAP replay', () => {
  it('reads every channel of the zstd fixture: rgb8 (padded), bgr8, yuyv, jpeg, png, prompts', async () => {
    const { frames, prompts, drops, report } = await replay({ path: fixture('shapes-zstd.mcap') });
    assert.deepEqual(drops, []);
    const by = (topic: string): Frame[] => frames.filter((f) => f.source === topic);
    assert.deepEqual(
      ['/camera/image_raw', '/camera/image_bgr', '/camera/image_yuyv', '/camera/image_raw/compressed', '/camera/image_png/compressed'].map((t) => by(t).length),
      [3, 2, 2, 2, 1],
    );
    assert.deepEqual(prompts.map((p) => p.text), ['describe the scene', 'how many shapes are there']);
    assert.ok(frames.every((f) => f.width === 160 && f.height === 120 && f.data.length === 160 * 120 * 3 && f.frameId === 'camera'));
    assert.deepEqual(frames.map((f) => f.id), frames.map((_, i) => i + 1), 'ids count up across channels');
    // The same scene through each encoding decodes to (nearly) the same pixels.
    const [rgb0, rgb1] = by('/camera/image_raw');
    assert.deepEqual(by('/camera/image_bgr')[0]!.data, rgb0!.data, 'bgr8 swapped back exactly');
    assert.ok(meanAbsDiff(by('/camera/image_yuyv')[0]!.data, rgb0!.data) < 4, 'yuyv close');
    assert.ok(meanAbsDiff(by('/camera/image_raw/compressed')[0]!.data, rgb0!.data) < 4, 'jpeg close');
    assert.deepEqual(by('/camera/image_png/compressed')[0]!.data, rgb1!.data, 'png lossless');
    assert.equal(rgb0!.stampNs, 1_704_067_200_200_000_000n, 'header stamp');
    assert.equal(report.truncated, false);
    assert.equal(report.summary?.messageCount, 12n);
    assert.deepEqual([report.frames, report.prompts, report.messages], [10, 2, 12]);
  });

  it('reads lz4 chunks', async () => {
    const { frames, prompts, report } = await replay({ path: fixture('shapes-lz4.mcap') });
    assert.equal(frames.length, 2);
    assert.deepEqual(prompts.map((p) => p.text), ['describe the scene']);
    assert.equal(report.skippedChunks, 0);
  });

  it('counts and skips every kind of bad input, and the good frames still come through', async () => {
    const { frames, prompts, drops, report } = await replay({ path: fixture('bad-input.mcap') });
    assert.equal(frames.length, 3, 'good frames before and after the bad ones and the broken chunk');
    assert.deepEqual(prompts.map((p) => p.text), ['how many shapes are there']);
    assert.deepEqual(report.drops, { unknown_topic: 2, invalid_input: 4, too_large: 1, decode_error: 4 });
    assert.equal(report.skippedChunks, 2);
    assert.equal(drops.length, 11);
    const details = drops.map((d) => d.detail ?? '').join('\n');
    for (const pattern of [
      /\/weird: schema custom_msgs\/msg\/Thing is not an input type/,
      /\/json_prompt: message encoding 'json' is not cdr/,
      /BITMAR_ERR_IMAGE_ENCODING: unsupported encoding 'bayer_rggb8'/,
      /fewer than step×height/,
      /zero dimension/,
      /100000×100000 exceeds the limit/,
      /BITMAR_ERR_ROS2_MESSAGE/,
      /BITMAR_ERR_IMAGE_DECODE/,
      /BITMAR_ERR_PROMPT_INVALID: prompt is not valid UTF-8/,
      /BITMAR_ERR_BAG_READ: zstd chunk skipped/,
    ]) {
      assert.match(details, pattern);
    }
    assert.ok(drops.every((d) => d.stage === 'bag-source'));
  });

  it('plays a recording cut short up to its last complete chunk, and says so', async () => {
    const { frames, drops, report } = await replay({ path: fixture('truncated.mcap') });
    assert.equal(frames.length, 2);
    assert.equal(report.truncated, true);
    assert.equal(report.summary, undefined, 'no footer');
    assert.match(drops.at(-1)?.detail ?? '', /the file ends inside a record/);
  });

  it('reports a missing file without throwing', async () => {
    const { frames, report } = await replay({ path: fixture('no-such.mcap') });
    assert.equal(frames.length, 0);
    assert.match(report.error ?? '', /BITMAR_ERR_BAG_READ: .*ENOENT/);
  });

  it('paces by log time at the given rate', async () => {
    const waits: number[] = [];
    let now = 0;
    const clock = { nowMs: () => now, epochNs: () => 0n };
    const sleep = async (ms: number): Promise<void> => {
      waits.push(Math.round(ms));
      now += ms;
    };
    await replay({ path: fixture('shapes-lz4.mcap'), rate: 2, clock, sleep });
    // Log times 0, 200, 400 ms → at rate 2: waits of 100 and 100 ms.
    assert.deepEqual(waits, [100, 100]);
    waits.length = 0;
    now = 0;
    await replay({ path: fixture('shapes-lz4.mcap'), rate: 1, clock, sleep });
    assert.deepEqual(waits, [200, 200]);
    assert.throws(() => createBagSource({ path: 'x', rate: -1 }), { code: 'BITMAR_ERR_CONFIG_INVALID' });
  });

  it('only the wanted topics when asked', async () => {
    const { frames, prompts } = await replay({ path: fixture('shapes-zstd.mcap'), imageTopics: ['/camera/image_bgr'], promptTopics: [] });
    assert.deepEqual([frames.length, prompts.length], [2, 0]);
  });

  it('the committed fixtures are what tools/make-mcap-fixtures.ts generates', async function () {
    this.timeout(30_000);
    const generator = await fixtureGenerator();
    const made = await makeFixtures();
    for (const f of made) {
      const committed = readFileSync(fixture(f.name));
      assert.ok(committed.length < 100_000, `${f.name} stays small`);
      if (f.name === 'shapes-zstd.mcap' && (await generatorOf(committed)) !== generator) {
        this.skip(); // made with the other painter (src/sources/synthetic appeared or went): regenerate
      }
      assert.ok(Buffer.from(f.bytes).equals(committed), `${f.name} differs: run node --import tsx tools/make-mcap-fixtures.ts`);
    }
  });
});

/** The `generator` entry of a fixture's bitmar_fixture metadata. */
async function generatorOf(bytes: Uint8Array): Promise<string | undefined> {
  const reader = await McapIndexedReader.Initialize({
    readable: { size: async () => BigInt(bytes.length), read: async (offset, length) => bytes.subarray(Number(offset), Number(offset + length)) },
  });
  for await (const m of reader.readMetadata({ name: 'bitmar_fixture' })) return m.metadata.get('generator');
  return undefined;
}
