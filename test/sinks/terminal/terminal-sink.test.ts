import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { TerminalSink } from '../../../src/sinks/terminal/terminal-sink.js';
import type { Caption, CaptionToken } from '../../../src/types.js';

const frame = { id: 7, source: 'synthetic', stampNs: 0n, frameId: 'cam', truth: { caption: 'a small red circle on the left' } };
const token = (index: number, piece: string, text: string): CaptionToken => ({ seq: 1, index, tokenId: index, piece, text, frame });
const caption = (text: string, over: Partial<Caption> = {}): Caption => ({
  seq: 1,
  text,
  tokenIds: [],
  prompt: 'describe the scene',
  frame,
  batchFrameIds: [7],
  isFinal: true,
  cancelled: false,
  latency: { encodeMs: 1, frameToFirstTokenMs: 2, frameToCaptionMs: 12.5, decodeMs: 3 },
  model: 'm',
  ...over,
});

function sink(): { s: TerminalSink; out: () => string } {
  const stream = new PassThrough();
  let buf = '';
  stream.on('data', (d: Buffer) => (buf += d.toString()));
  return { s: new TerminalSink(stream as unknown as NodeJS.WriteStream), out: () => buf };
}

describe('TerminalSink (not a TTY)', () => {
  it('streams tokens on one line and ends it with latency and the ground-truth verdict', () => {
    const { s, out } = sink();
    s.observe({ type: 'token', token: token(0, 'a', 'a') });
    s.observe({ type: 'token', token: token(1, ' small', 'a small') });
    s.observe({ type: 'caption', caption: caption('a small red circle on the left') });
    s.observe({ type: 'caption', caption: caption('a large red circle on the left') });
    s.close();
    const lines = out().trim().split('\n');
    assert.equal(lines[0], '[1] a small  — 12.5 ms, frame 7  ✓');
    assert.match(lines[1]!, /^\[1\] a large red circle on the left {2}— 12\.5 ms, frame 7 {2}✗ \(truth: a small red circle on the left\)$/);
    assert.equal(lines[2], 'synthetic ground truth: 1 of 2 captions exact (50.0%)');
    assert.ok(!out().includes('\x1b'), 'no escape codes when not a TTY');
  });

  it('does not judge other prompts or cancelled captions', () => {
    const { s, out } = sink();
    s.observe({ type: 'caption', caption: caption('one', { prompt: 'how many shapes are there' }) });
    s.observe({ type: 'caption', caption: caption('a small', { cancelled: true }) });
    s.close();
    assert.ok(!out().includes('✓') && !out().includes('✗'));
    assert.match(out(), /\(cancelled\)/);
    assert.equal(s.status().correct, '-');
  });
});
