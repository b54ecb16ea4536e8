/** Picks the frame source for `run` from the config: synthetic, MQTT, ROS 2 or an MCAP bag. */
import { EMPTY, Subject, type Observable } from 'rxjs';
import type { BitmarConfig } from '../../config/schema.js';
import { BitmarError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { DecodePool } from '../../sources/image/decode-pool.js';
import { syntheticCamera } from '../../sources/synthetic/synthetic-camera.js';
import type { DropEvent, Frame, Prompt } from '../../types.js';
import type { NodeRos2 } from './ros2.js';
import type { NodeMqtt } from './mqtt.js';

export interface NodeSource {
  readonly frames$: Observable<Frame>;
  readonly prompts$?: Observable<Prompt>;
  readonly drops$?: Observable<DropEvent>;
  close(): Promise<void> | void;
}

export async function openSource(cfg: Readonly<BitmarConfig>, deps: { mqtt: NodeMqtt | null; ros2: NodeRos2 | null; log: Logger; say: (l: string) => void; decodePool?: DecodePool }): Promise<NodeSource> {
  switch (cfg.source.kind) {
    case 'synthetic': {
      const s = cfg.source.synthetic;
      deps.say(`bitmar-node: synthetic Shapes camera ${s.width}×${s.height} at ${s.fps} fps (seed ${s.seed})`);
      const drops$ = new Subject<DropEvent>();
      const frames$ = syntheticCamera({ width: s.width, height: s.height, fps: s.fps, seed: s.seed, sceneChangeEverySec: s.sceneChangeEverySec, onDrop: (d) => drops$.next(d) });
      return { frames$, drops$, close: () => drops$.complete() };
    }
    case 'mqtt':
      if (!deps.mqtt) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', 'source.kind is mqtt but MQTT is disabled (mqtt.enabled: false / --no-mqtt)');
      deps.say(`bitmar-node: frames from MQTT ${deps.mqtt.transport.topic('image')}`);
      return { frames$: deps.mqtt.frames$, drops$: deps.mqtt.drops$, close() {} };
    case 'bag': {
      const mod = await import('./source-bag.js');
      return mod.openBagSource(cfg, deps);
    }
    case 'ros2':
      if (!deps.ros2) throw new BitmarError('BITMAR_ERR_ROS2_UNAVAILABLE', 'source.kind is ros2 but ROS 2 is off (source ROS 2 first, or set ros2.enabled: on)');
      deps.say(`bitmar-node: frames from ROS 2 ${cfg.ros2.imageTopic}${cfg.ros2.compressedTopic ? ` and ${cfg.ros2.compressedTopic}` : ''}`);
      return { frames$: deps.ros2.frames$, drops$: deps.ros2.drops$, close() {} };
    default:
      return { frames$: EMPTY, close() {} };
  }
}
