import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  COLOURS,
  COLOUR_RGB,
  FRAME_LIMITS,
  PROMPTS,
  SHAPES,
  SIZE_RANGES,
  type Scene,
  type SceneObject,
  WORLD_VOCABULARY,
  answerOf,
  boxOf,
  captionOf,
  deriveSeed,
  mulberry32,
  normalizePrompt,
  promptsFor,
  qaFor,
  sampleScene,
  sceneViolations,
} from '../../../src/sources/synthetic/shapes-world.js';

/** Frame sizes over the whole contract range, any aspect ratio. */
const frameArb = fc.record({
  width: fc.integer({ min: FRAME_LIMITS.minWidth, max: FRAME_LIMITS.maxWidth }),
  height: fc.integer({ min: FRAME_LIMITS.minHeight, max: FRAME_LIMITS.maxHeight }),
});
const seedArb = fc.integer({ min: 0, max: 0xffffffff });

function obj(partial: Partial<SceneObject> & Pick<SceneObject, 'x' | 'y'>): SceneObject {
  const colour = partial.colour ?? 'red';
  return { shape: 'circle', colour, size: 'small', sizeFrac: 0.18, rgb: COLOUR_RGB[colour], ...partial };
}
function scene(...objects: SceneObject[]): Scene {
  return { aspect: 4 / 3, objects, background: { rgb: [10, 10, 10], gradient: 0, noiseSigma: 0 } };
}

const CAPTION_ONE = new RegExp(
  `^a (small|large) (${COLOURS.join('|')}) (${SHAPES.join('|')}) (on the left|in the middle|on the right)$`,
);
const OBJECT = `(${COLOURS.join('|')}) (${SHAPES.join('|')})`;
const CAPTION_TWO = new RegExp(`^a ${OBJECT} (to the left of|above) a ${OBJECT}$`);

/** The object a caption names, by colour and shape (unique in a valid scene). */
function named(s: Scene, colour: string, shape: string): SceneObject {
  const found = s.objects.filter((o) => o.colour === colour && o.shape === shape);
  assert.equal(found.length, 1, `exactly one ${colour} ${shape}`);
  return found[0]!;
}

describe('shapes-world', () => {
  describe('rng', () => {
    it('mulberry32 is deterministic, in [0, 1) and seed-sensitive', () => {
      const a = mulberry32(42);
      const b = mulberry32(42);
      const xs = Array.from({ length: 1000 }, () => a());
      assert.deepEqual(xs, Array.from({ length: 1000 }, () => b()));
      assert.ok(xs.every((x) => x >= 0 && x < 1));
      assert.notEqual(mulberry32(43)(), mulberry32(42)());
      const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
      assert.ok(Math.abs(mean - 0.5) < 0.05);
    });
    it('deriveSeed separates streams', () => {
      const seeds = new Set(Array.from({ length: 1000 }, (_, i) => deriveSeed(1, i)));
      assert.equal(seeds.size, 1000);
      assert.notEqual(deriveSeed(1, 0), deriveSeed(2, 0));
    });
  });

  describe('sampleScene', () => {
    it('obeys every rule for any frame size and seed', () => {
      fc.assert(
        fc.property(frameArb, seedArb, (frame, seed) => {
          const s = sampleScene(mulberry32(seed), frame);
          assert.deepEqual(sceneViolations(s, frame.width / frame.height), []);
          for (const o of s.objects) {
            // centres clear of the thresholds, box inside the frame, size in its word's range
            assert.ok(Math.abs(o.x - 1 / 3) >= 0.04 && Math.abs(o.x - 2 / 3) >= 0.04);
            const [x0, y0, x1, y1] = boxOf(o, s.aspect);
            assert.ok(x0 >= 0 && y0 >= 0 && x1 <= 1 && y1 <= 1);
            assert.ok(o.sizeFrac >= SIZE_RANGES[o.size].min && o.sizeFrac <= SIZE_RANGES[o.size].max);
            o.rgb.forEach((v, c) => assert.ok(Math.abs(v - COLOUR_RGB[o.colour][c]!) <= 15));
          }
          if (s.objects.length === 2) {
            const [a, b] = s.objects as [SceneObject, SceneObject];
            const dx = Math.abs(a.x - b.x);
            const dy = Math.abs(a.y - b.y);
            assert.ok(dx >= 1.5 * dy || dy >= 1.5 * dx);
            assert.ok(Math.max(dx, dy) >= 0.2);
            assert.ok(a.colour !== b.colour || a.shape !== b.shape);
            // gap in pixels ≥ 4% of the width along x or y
            const [ax0, ay0, ax1, ay1] = boxOf(a, s.aspect).map((v, i) => v * (i % 2 === 0 ? frame.width : frame.height));
            const [bx0, by0, bx1, by1] = boxOf(b, s.aspect).map((v, i) => v * (i % 2 === 0 ? frame.width : frame.height));
            const gap = Math.max(bx0! - ax1!, ax0! - bx1!, by0! - ay1!, ay0! - by1!);
            assert.ok(gap >= 0.04 * frame.width - 1e-9, `gap ${gap}px`);
          }
          const bg = s.background;
          assert.ok(bg.rgb.every((v) => v >= 0 && v <= 70) && Math.abs(bg.gradient) <= 30);
          assert.ok(bg.noiseSigma >= 0 && bg.noiseSigma <= 8);
        }),
        { numRuns: 400 },
      );
    });

    it('is deterministic under a seed', () => {
      const f = { width: 320, height: 240 };
      assert.deepEqual(sampleScene(mulberry32(7), f), sampleScene(mulberry32(7), f));
      assert.notDeepEqual(sampleScene(mulberry32(7), f), sampleScene(mulberry32(8), f));
    });

    it('covers both counts, every shape, colour, size, place and pair direction', () => {
      const rng = mulberry32(3);
      const seen = new Set<string>();
      for (let i = 0; i < 600; i++) {
        const s = sampleScene(rng, { width: 320, height: 240 });
        const c = captionOf(s);
        seen.add(`count:${s.objects.length}`);
        for (const o of s.objects) seen.add(`${o.shape}`).add(`${o.colour}`);
        if (s.objects.length === 1) seen.add(s.objects[0]!.size).add(c.split(' ').slice(-2).join(' '));
        else seen.add(c.includes('above') ? 'above' : 'left of');
        for (const o of s.objects) seen.add(`${o.size}-in-${s.objects.length}`);
      }
      const want = ['count:1', 'count:2', ...SHAPES, ...COLOURS, 'small', 'large', 'the left', 'the middle', 'the right', 'above', 'left of', 'large-in-2', 'small-in-2'];
      for (const w of want) assert.ok(seen.has(w), `never saw ${w}`);
    });

    it('fits the narrowest and widest frames of the range', () => {
      for (const frame of [{ width: 160, height: 720 }, { width: 1280, height: 120 }, { width: 160, height: 120 }]) {
        const rng = mulberry32(11);
        for (let i = 0; i < 50; i++) assert.deepEqual(sceneViolations(sampleScene(rng, frame), frame.width / frame.height), []);
      }
    });
  });

  describe('sceneViolations', () => {
    it('flags each broken rule', () => {
      assert.deepEqual(sceneViolations(scene(obj({ x: 0.2, y: 0.5 })), 4 / 3), []);
      assert.match(sceneViolations(scene(obj({ x: 0.35, y: 0.5 })), 4 / 3).join(), /within 0.04/);
      assert.match(sceneViolations(scene(obj({ x: 0.02, y: 0.5 })), 4 / 3).join(), /inside/);
      const overlap = scene(obj({ x: 0.2, y: 0.5 }), obj({ x: 0.25, y: 0.5, shape: 'square' }));
      assert.match(sceneViolations(overlap, 4 / 3).join(), /closer than 4%/);
      const same = scene(obj({ x: 0.15, y: 0.5 }), obj({ x: 0.85, y: 0.5 }));
      assert.match(sceneViolations(same, 4 / 3).join(), /share colour and shape/);
      const diagonal = scene(obj({ x: 0.15, y: 0.2 }), obj({ x: 0.8, y: 0.75, shape: 'cross' }));
      assert.match(sceneViolations(diagonal, 4 / 3).join(), /neither clearly horizontal/);
      const badSize = scene(obj({ x: 0.15, y: 0.5, sizeFrac: 0.3 }));
      assert.match(sceneViolations(badSize, 4 / 3).join(), /size/);
    });
  });

  describe('captionOf', () => {
    it('names one object with size, colour, shape and place', () => {
      assert.equal(captionOf(scene(obj({ x: 0.2, y: 0.5 }))), 'a small red circle on the left');
      assert.equal(captionOf(scene(obj({ x: 0.5, y: 0.2, size: 'large', colour: 'white', shape: 'cross' }))), 'a large white cross in the middle');
      assert.equal(captionOf(scene(obj({ x: 0.8, y: 0.5, colour: 'purple', shape: 'triangle' }))), 'a small purple triangle on the right');
    });
    it('orders pairs canonically: left first, upper first', () => {
      const yellowCross = obj({ x: 0.5, y: 0.8, colour: 'yellow', shape: 'cross' });
      const blueSquare = obj({ x: 0.52, y: 0.25, colour: 'blue', shape: 'square' });
      assert.equal(captionOf(scene(yellowCross, blueSquare)), 'a blue square above a yellow cross');
      assert.equal(captionOf(scene(blueSquare, yellowCross)), 'a blue square above a yellow cross');
      const left = obj({ x: 0.15, y: 0.5, colour: 'green', shape: 'triangle' });
      const right = obj({ x: 0.8, y: 0.45, colour: 'green', shape: 'circle' });
      assert.equal(captionOf(scene(right, left)), 'a green triangle to the left of a green circle');
    });
    it('follows the grammar and the geometry for random scenes', () => {
      fc.assert(
        fc.property(frameArb, seedArb, (frame, seed) => {
          const s = sampleScene(mulberry32(seed), frame);
          const c = captionOf(s);
          assert.equal(c, c.toLowerCase().replace(/\s+/g, ' ').trim());
          if (s.objects.length === 1) {
            const m = CAPTION_ONE.exec(c);
            assert.ok(m, c);
            const o = s.objects[0]!;
            assert.deepEqual([m[1], m[2], m[3]], [o.size, o.colour, o.shape]);
            const want = o.x < 1 / 3 ? 'on the left' : o.x > 2 / 3 ? 'on the right' : 'in the middle';
            assert.equal(m[4], want);
          } else {
            const m = CAPTION_TWO.exec(c);
            assert.ok(m, c);
            const first = named(s, m[1]!, m[2]!);
            const second = named(s, m[4]!, m[5]!);
            const dx = second.x - first.x;
            const dy = second.y - first.y;
            if (m[3] === 'above') assert.ok(dy > 0 && Math.abs(dy) >= 1.5 * Math.abs(dx), c);
            else assert.ok(dx > 0 && Math.abs(dx) >= 1.5 * Math.abs(dy), c);
          }
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('prompts and answers', () => {
    const pair = scene(obj({ x: 0.15, y: 0.5, colour: 'blue', shape: 'square' }), obj({ x: 0.8, y: 0.5, colour: 'red', shape: 'square' }));
    const mixed = scene(obj({ x: 0.15, y: 0.5, colour: 'blue', shape: 'square' }), obj({ x: 0.8, y: 0.5, colour: 'yellow', shape: 'cross' }));

    it('normalizes case, spaces, punctuation; empty means describe', () => {
      assert.equal(normalizePrompt('  What   COLOR is the Cross?  '), 'what color is the cross');
      assert.equal(normalizePrompt(''), 'describe the scene');
      assert.equal(normalizePrompt('   '), 'describe the scene');
      assert.equal(answerOf(mixed, ''), captionOf(mixed));
      assert.equal(answerOf(mixed, 'Describe the scene.'), 'a blue square to the left of a yellow cross');
    });
    it('answers the four kinds', () => {
      assert.equal(answerOf(mixed, 'how many shapes are there'), 'two');
      assert.equal(answerOf(scene(obj({ x: 0.2, y: 0.5 })), 'HOW MANY SHAPES ARE THERE'), 'one');
      assert.equal(answerOf(mixed, 'what color is the cross'), 'yellow');
      assert.equal(answerOf(mixed, 'what color is the square'), 'blue');
      assert.equal(answerOf(mixed, 'is there a yellow cross'), 'yes');
      assert.equal(answerOf(mixed, 'is there a red cross'), 'no');
      assert.equal(answerOf(mixed, 'is there a blue square?'), 'yes');
    });
    it('asks what color only when exactly one object has the shape', () => {
      assert.equal(answerOf(pair, 'what color is the square'), undefined);
      assert.equal(answerOf(pair, 'what color is the circle'), undefined);
      assert.ok(!promptsFor(pair).some((p) => p.startsWith('what color')));
      assert.deepEqual(promptsFor(mixed).filter((p) => p.startsWith('what color')).sort(), ['what color is the cross', 'what color is the square']);
      assert.equal(answerOf(mixed, 'what is this'), undefined);
    });
    it('promptsFor covers all four kinds and every prompt has an answer', () => {
      const ps = promptsFor(mixed);
      assert.ok(ps.includes(PROMPTS.describe) && ps.includes(PROMPTS.count));
      assert.equal(ps.filter((p) => p.startsWith('is there')).length, COLOURS.length * SHAPES.length);
      for (const p of ps) assert.notEqual(answerOf(mixed, p), undefined, p);
    });
    it('qaFor has describe, count, every allowed colour question, one yes and one no', () => {
      fc.assert(
        fc.property(frameArb, seedArb, (frame, seed) => {
          const rng = mulberry32(seed);
          const s = sampleScene(rng, frame);
          const qa = qaFor(s, rng);
          for (const [q, a] of qa) assert.equal(answerOf(s, q), a, q);
          const prompts = qa.map(([q]) => q);
          assert.equal(prompts[0], 'describe the scene');
          assert.equal(prompts[1], 'how many shapes are there');
          const allowedColour = promptsFor(s).filter((p) => p.startsWith('what color'));
          assert.deepEqual(prompts.filter((p) => p.startsWith('what color')), allowedColour);
          const exists = qa.filter(([q]) => q.startsWith('is there'));
          assert.deepEqual(exists.map(([, a]) => a), ['yes', 'no']);
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('WORLD_VOCABULARY', () => {
    it('is sorted, unique and holds every word of every prompt and answer', () => {
      assert.deepEqual([...WORLD_VOCABULARY], [...new Set(WORLD_VOCABULARY)].sort());
      const vocab = new Set(WORLD_VOCABULARY);
      const rng = mulberry32(5);
      const used = new Set<string>();
      for (let i = 0; i < 500; i++) {
        const s = sampleScene(rng, { width: 320, height: 240 });
        for (const p of promptsFor(s)) {
          for (const w of `${p} ${answerOf(s, p)}`.split(' ')) {
            assert.ok(vocab.has(w), `missing ${w}`);
            used.add(w);
          }
        }
      }
      assert.deepEqual([...used].sort(), [...WORLD_VOCABULARY], 'every vocabulary word is used');
    });
  });
});
