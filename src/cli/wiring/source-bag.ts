/**
 * MCAP bag replay for `run --source bag:FILE` (rosbag2 MCAP, zstd/lz4 chunks, paced by log time);
 * images are decoded in the run's decode pool when one is given, every frame kept, in order.
 */
import type { BitmarConfig } from '../../config/schema.js';
import { BitmarError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { createBagSource } from '../../sources/bag/bag-source.js';
import type { DecodePool } from '../../sources/image/decode-pool.js';
import type { NodeSource } from './source.js';
import { existsSync } from 'node:fs';

export async function openBagSource(cfg: Readonly<BitmarConfig>, deps: { log: Logger; say: (l: string) => void; decodePool?: DecodePool }): Promise<NodeSource> {
  const path = cfg.source.bagPath;
  if (!path || !existsSync(path)) throw new BitmarError('BITMAR_ERR_BAG_READ', `bag file "${path}" does not exist (use --source bag:FILE.mcap)`);
  const bag = createBagSource({ path, rate: cfg.source.bagRate, ...(deps.decodePool ? { decodePool: deps.decodePool } : {}) });
  deps.decodePool?.warm(); // the worker starts while the file is opened, not on the first frame
  deps.say(`bitmar-node: replaying ${path} at ${cfg.source.bagRate === 0 ? 'full speed' : `${cfg.source.bagRate}× log time`}`);
  void bag.done.then((r) => {
    const drops = Object.entries(r.drops).map(([k, v]) => `${k} ${String(v)}`).join(', ');
    deps.log.info({ frames: r.frames, prompts: r.prompts, messages: r.messages, truncated: r.truncated }, `bag replay done${r.error ? `: ${r.error}` : ''}${drops ? ` (dropped: ${drops})` : ''}`);
  });
  return { frames$: bag.frames$, prompts$: bag.prompts$, drops$: bag.drops$, close: () => bag.close() };
}
