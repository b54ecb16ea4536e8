/** Caption, token and frame values as the pipeline produces them. */
import type { Caption, CaptionToken, FrameRef, ReplyTarget } from '../../../src/types.js';

export function frameRef(id: number, replyTo?: ReplyTarget): FrameRef {
  return { id, source: 'mqtt:bitmar/cam1/image', stampNs: 1_732_700_000_123_456_789n + BigInt(id), frameId: 'cam1', ...(replyTo ? { replyTo } : {}) };
}

export function caption(seq: number, over: Partial<Caption> = {}): Caption {
  return {
    seq,
    text: `a red circle ${seq}`,
    tokenIds: [5, 6, 7],
    prompt: 'what is in the scene',
    frame: frameRef(seq),
    batchFrameIds: [seq],
    isFinal: true,
    cancelled: false,
    latency: { encodeMs: 3.5, frameToFirstTokenMs: 10, frameToCaptionMs: 42.25, decodeMs: 30 },
    model: 'bitmar-shapes-test',
    ...over,
  };
}

export function token(seq: number, index: number, replyTo?: ReplyTarget): CaptionToken {
  return { seq, index, tokenId: 5 + index, piece: index === 0 ? 'a' : ' red', text: index === 0 ? 'a' : 'a red', frame: frameRef(seq, replyTo) };
}
