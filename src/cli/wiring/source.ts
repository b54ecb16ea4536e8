/** Picks the frame source for `run` from the config: synthetic, MQTT, ROS 2 or an MCAP bag. */
import { EMPTY, type Observable } from 'rxjs';
import type { BitmarConfig } from '../../config/schema.js';
import { BitmarError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { PipelineEvent } from '../../pipeline/events.js';
import { syntheticCamera } from '../../sources/synthetic/synthetic-camera.js';
import type { Frame, Prompt } from '../../types.js';
import type { NodeMqtt } from './mqtt.js';

export interface NodeSource {
  readonly frames$: Observable<Frame>;
  readonly prompts$?: Observable<Prompt>;
  /** Sources that also publish (ROS 2) see every pipeline event. */
  observe?(ev: PipelineEvent): void;
  close(): Promise<void> | void;
}

export async function openSource(cfg: Readonly<BitmarConfig>, deps: { mqtt: NodeMqtt | null; log: Logger; say: (l: string) => void }): Promise<NodeSource> {
  switch (cfg.source.kind) {
    case 'synthetic': {
      const s = cfg.source.synthetic;
      deps.say(`bitmar-node: synthetic Shapes camera ${s.width}×${s.height} at ${s.fps} fps (seed ${s.seed})`);
      return { frames$: syntheticCamera({ width: s.width, height: s.height, fps: s.fps, seed: s.seed, sceneChangeEverySec: s.sceneChangeEverySec }), close() {} };
    }
    case 'mqtt':
      if (!deps.mqtt) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', 'source.kind is mqtt but MQTT is disabled (mqtt.enabled: false / --no-mqtt)');
      deps.say(`bitmar-node: frames from MQTT ${deps.mqtt.transport.topic('image')}`);
      return { frames$: deps.mqtt.frames$, close() {} };
    case 'bag': {
      const mod = await import('./source-bag.js');
      return mod.openBagSource(cfg, deps);
    }
    case 'ros2': {
      const mod = await import('./source-ros2.js');
      return mod.openRos2Source(cfg, deps);
    }
    default:
      return { frames$: EMPTY, close() {} };
  }
}
