import assert from 'node:assert/strict';
import { Confusions, Tally, accuracyOf, captionDiff, isExactMatch, normalizeAnswer, parseCaption } from '../../src/eval/scoring.js';

describe('eval scoring', () => {
  it('normalises by lower-casing and collapsing whitespace (contract: exact match after that)', () => {
    assert.equal(normalizeAnswer('  A Small  RED\tcircle\n on the LEFT '), 'a small red circle on the left');
    assert.ok(isExactMatch('YES', 'yes'));
    assert.ok(isExactMatch('a  blue square   above a yellow cross', 'a blue square above a yellow cross'));
    assert.ok(isExactMatch('', ''));
  });

  it('is otherwise exact: no punctuation stripping, no partial credit', () => {
    assert.ok(!isExactMatch('yes.', 'yes'));
    assert.ok(!isExactMatch('a small red circle on the left of', 'a small red circle on the left'));
    assert.ok(!isExactMatch('a smallred circle on the left', 'a small red circle on the left'));
    assert.ok(!isExactMatch('two', 'one'));
  });

  it('tallies accuracy with a Wilson interval that contains the estimate', () => {
    const t = new Tally();
    for (let i = 0; i < 100; i++) t.add('k', i < 97);
    const a = t.get('k');
    assert.equal(a.n, 100);
    assert.equal(a.correct, 97);
    assert.equal(a.accuracy, 0.97);
    assert.ok(a.ci95[0] < 0.97 && a.ci95[1] > 0.97 && a.ci95[0] > 0.9 && a.ci95[1] <= 1);
    assert.deepEqual(accuracyOf(0, 0), { n: 0, correct: 0, accuracy: 0, ci95: [0, 1] });
    assert.deepEqual(Object.keys(t.toJSON()), ['k']);
  });

  it('parses captions of the world and nothing else', () => {
    assert.deepEqual(parseCaption('a small red circle on the left'), { objects: 1, size: 'small', colour: 'red', shape: 'circle', place: 'on the left' });
    assert.deepEqual(parseCaption('A blue square above a yellow cross'), {
      objects: 2,
      relation: 'above',
      first: { colour: 'blue', shape: 'square' },
      second: { colour: 'yellow', shape: 'cross' },
    });
    assert.equal(parseCaption('a small red circle'), undefined);
    assert.equal(parseCaption('a huge red circle on the left'), undefined);
    assert.equal(parseCaption('yes'), undefined);
  });

  it('names the wrong fields of a caption (confusion hints)', () => {
    assert.deepEqual(captionDiff('a small red circle on the left', 'a small red circle on the left'), []);
    assert.deepEqual(captionDiff('a small red circle on the left', 'a large purple circle in the middle'), [
      ['size', 'small', 'large'],
      ['colour', 'red', 'purple'],
      ['place', 'on the left', 'in the middle'],
    ]);
    assert.deepEqual(captionDiff('a blue square above a yellow cross', 'a yellow cross above a blue square'), [['order', 'as drawn', 'swapped']]);
    assert.deepEqual(captionDiff('a blue square above a yellow cross', 'a blue square to the left of a red cross'), [
      ['relation', 'above', 'to the left of'],
      ['colour', 'yellow', 'red'],
    ]);
    assert.deepEqual(captionDiff('a blue square above a yellow cross', 'a small blue square on the left'), [['objects', '2', '1']]);
    assert.deepEqual(captionDiff('a blue square above a yellow cross', 'left <unk> there'), [['malformed', 'caption', 'not a world caption']]);
    assert.deepEqual(captionDiff('a blue square above a yellow cross', ''), [['malformed', 'caption', '(empty)']]);
  });

  it('ranks confusions by count', () => {
    const c = new Confusions();
    c.add('colour', 'purple', 'blue');
    c.add('colour', 'purple', 'blue');
    c.add('colour', 'red', 'yellow');
    assert.deepEqual(c.top(), [
      { confusion: 'colour: purple → blue', count: 2 },
      { confusion: 'colour: red → yellow', count: 1 },
    ]);
    assert.equal(c.top(1).length, 1);
  });
});
