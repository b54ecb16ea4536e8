/** ROS 2 topics for `run --source ros2` (wired to src/sources/ros2). */
import type { BitmarConfig } from '../../config/schema.js';
import { BitmarError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { NodeSource } from './source.js';

export async function openRos2Source(_cfg: Readonly<BitmarConfig>, _deps: { log: Logger; say: (l: string) => void }): Promise<NodeSource> {
  throw new BitmarError('BITMAR_ERR_ROS2_UNAVAILABLE', 'the ROS 2 source is not wired into run yet (issue 7)');
}
