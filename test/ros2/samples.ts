/** Sample values shared by the ROS 2 and MCAP tests. */
import type { Caption } from '../../src/types.js';

export const sampleCaption: Caption = {
  seq: 7,
  text: 'a red circle',
  tokenIds: [11, 12, 13],
  prompt: 'describe the scene',
  frame: { id: 42, source: '/camera/image_raw', stampNs: 1_700_000_000_123_456_789n, frameId: 'camera_optical' },
  batchFrameIds: [39, 40, 41, 42],
  isFinal: true,
  cancelled: false,
  latency: { encodeMs: 12.5, frameToFirstTokenMs: 40, frameToCaptionMs: 180.25, decodeMs: 120 },
  model: 'bitmar-shapes',
  episodeSlot: 3,
};
