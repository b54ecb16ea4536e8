import assert from 'node:assert/strict';
import { PROMPT_KINDS, parseKinds, questionsFor, truthFromCaption } from '../../src/eval/questions.js';
import { CONTRACT_RANGES, tsEvalItem } from '../../src/eval/scene-set.js';
import { EVAL_SEED } from '../../src/eval/seeds.js';
import { answerOf, captionOf, mulberry32, sceneViolations, uniqueShapes } from '../../src/sources/synthetic/shapes-world.js';

describe('eval prompt mix', () => {
  const items = Array.from({ length: 150 }, (_, i) => tsEvalItem(EVAL_SEED, i));

  it('asks every scene describe, count, every allowed colour question, one exists-yes and one exists-no', () => {
    for (const it of items) {
      const byKind = (k: string) => it.questions.filter((q) => q.kind === k);
      assert.equal(byKind('describe').length, 1);
      assert.equal(byKind('count').length, 1);
      assert.equal(byKind('colour').length, uniqueShapes(it.scene).length, 'colour only where allowed, all of those');
      assert.deepEqual(byKind('exists').map((q) => q.answer), ['yes', 'no']);
    }
  });

  it('covers all four kinds and both exists answers over the set', () => {
    const seen = new Set(items.flatMap((it) => it.questions.map((q) => (q.kind === 'exists' ? `exists ${q.answer}` : q.kind))));
    assert.deepEqual([...seen].sort(), ['colour', 'count', 'describe', 'exists no', 'exists yes']);
    const counts = new Set(items.map((it) => it.scene.objects.length));
    assert.deepEqual([...counts].sort(), [1, 2]);
  });

  it("answers agree with the world's answerOf", () => {
    for (const it of items) for (const q of it.questions) assert.equal(q.answer, answerOf(it.scene, q.prompt), `${q.prompt} of ${it.truth.caption}`);
  });

  it('mostly asks hard negatives (an attribute shared with an object)', () => {
    let hard = 0;
    for (const it of items) {
      const no = it.questions.find((q) => q.kind === 'exists' && q.answer === 'no')!;
      const [, colour, shape] = /^is there a (\w+) (\w+)$/.exec(no.prompt)!;
      if (it.scene.objects.some((o) => o.colour === colour || o.shape === shape)) hard++;
    }
    assert.ok(hard / items.length > 0.6, `hard negatives ${hard}/${items.length}`);
  });

  it('draws valid scenes across the robustness ranges', () => {
    for (const it of items) {
      const c = it.conditions;
      assert.deepEqual(sceneViolations(it.scene, c.width / c.height), []);
      assert.ok(c.width >= 160 && c.width <= 1280 && c.height >= 120 && c.height <= 720);
      assert.ok(c.brightness! >= 0.9 && c.brightness! <= 1.1);
      assert.ok(c.jpegQuality === null || (c.jpegQuality >= 70 && c.jpegQuality <= 100));
      assert.equal(it.image.data.length, c.width * c.height * 3);
      assert.equal(it.truth.caption, captionOf(it.scene));
    }
    const jpeg = items.filter((it) => it.conditions.jpegQuality !== null).length;
    assert.ok(jpeg > 40 && jpeg < 110, `JPEG on about half: ${jpeg}`);
    assert.ok(items.some((it) => it.conditions.width / it.conditions.height < 0.75), 'a portrait frame');
    assert.ok(items.some((it) => it.conditions.width / it.conditions.height > 2.5), 'a very wide frame');
    assert.ok(items.some((it) => it.conditions.height >= 480), 'a large frame');
    assert.equal(CONTRACT_RANGES.minJpegQuality, 70);
  });

  it('is a function of (seed, index): the same item twice, a different one for another seed', () => {
    const a = tsEvalItem(EVAL_SEED, 5);
    const b = tsEvalItem(EVAL_SEED, 5);
    assert.deepEqual(a.questions, b.questions);
    assert.deepEqual(a.image.data, b.image.data);
    assert.notDeepEqual(tsEvalItem(EVAL_SEED + 1, 5).image.data, a.image.data);
  });

  it('reads the objects back from a caption (the Python renderer path) and asks the same kinds', () => {
    const t = truthFromCaption('a blue square above a yellow cross')!;
    assert.deepEqual(t.objects, [
      { colour: 'blue', shape: 'square' },
      { colour: 'yellow', shape: 'cross' },
    ]);
    const qs = questionsFor(t, mulberry32(3));
    assert.deepEqual(qs.map((q) => q.kind), ['describe', 'count', 'colour', 'colour', 'exists', 'exists']);
    assert.deepEqual(qs.slice(0, 4).map((q) => q.answer), ['a blue square above a yellow cross', 'two', 'blue', 'yellow']);
    const same = truthFromCaption('a red circle to the left of a green circle')!;
    assert.equal(questionsFor(same, mulberry32(3)).filter((q) => q.kind === 'colour').length, 0, 'no colour question when both are circles');
    assert.equal(truthFromCaption('not a caption'), undefined);
  });

  it('parses --kinds', () => {
    assert.deepEqual(parseKinds('exists,describe'), ['describe', 'exists']);
    assert.deepEqual(parseKinds(['color', 'count']), ['count', 'colour']);
    assert.deepEqual(parseKinds(PROMPT_KINDS.join(' ')), [...PROMPT_KINDS]);
    assert.throws(() => parseKinds('size'), /unknown prompt kind "size"/);
    assert.throws(() => parseKinds(''), /no prompt kind/);
  });
});
