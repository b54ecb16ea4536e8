/** MCAP bag replay for `run --source bag:FILE` (wired to src/sources/bag). */
import type { BitmarConfig } from '../../config/schema.js';
import { BitmarError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { NodeSource } from './source.js';

export async function openBagSource(cfg: Readonly<BitmarConfig>, _deps: { log: Logger; say: (l: string) => void }): Promise<NodeSource> {
  throw new BitmarError('BITMAR_ERR_BAG_READ', `bag replay of ${cfg.source.bagPath} is not wired into run yet (issue 7)`);
}
