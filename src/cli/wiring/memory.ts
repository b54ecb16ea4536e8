/** The episodic memory for `run`: SQLite under the state directory, mirrored into the model worker. */
import { join } from 'node:path';
import type { BitmarConfig } from '../../config/schema.js';
import { isBitmarError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { MEMORY_DB_FILE, openEpisodicStore, type EpisodicStore, type PolicySpec } from '../../memory/index.js';
import type { EpisodeSink } from '../../pipeline/describe-batch.js';
import type { MemoryEvent } from '../../pipeline/events.js';

export interface NodeMemory {
  readonly store: EpisodicStore;
  readonly sink: EpisodeSink;
  /** "used/slots" for the status line. */
  fill(): string;
  used(): number;
  setPolicy(policy: BitmarConfig['memory']['policy']): void;
  close(): void;
}

/** What the memory needs from the model worker: a copy of the live slots for the read. */
export interface MemoryMirror {
  setMemory(slots: Float32Array, count: number): void;
}

export function policySpec(cfg: Pick<BitmarConfig, 'memory'>, name: BitmarConfig['memory']['policy'] = cfg.memory.policy): PolicySpec {
  if (name === 'similarity-merge') return { name, threshold: cfg.memory.mergeThreshold };
  if (name === 'ttl') return { name, ttlMs: cfg.memory.ttlSec * 1000 };
  return { name };
}

export function openMemory(cfg: Readonly<BitmarConfig>, stateDir: string, width: number, mirror: MemoryMirror, log: Logger): NodeMemory {
  const path = cfg.memory.dbPath || join(stateDir, MEMORY_DB_FILE);
  const store = openEpisodicStore({
    path,
    width,
    slots: cfg.memory.slots,
    policy: policySpec(cfg),
    archiveCap: cfg.memory.archiveLimit,
    syncIntervalMs: cfg.memory.syncIntervalMs,
    // A daemon: the checkpoint thread's memory is part of the start-up footprint, not a step minutes later.
    checkpointWorker: 'eager',
    onError: (e) => log.warn(`memory store: ${e.message} (the node keeps running; changes stay in memory until the disk recovers)`),
  });
  let mirroredVersion = -1;
  const syncMirror = (): void => {
    const live = store.liveVectors();
    if (live.version === mirroredVersion) return;
    mirroredVersion = live.version;
    mirror.setMemory(live.slots, live.count);
  };
  syncMirror();
  log.info(`memory: ${path} (${store.stats().used}/${cfg.memory.slots} slots, policy ${cfg.memory.policy})`);

  const sink: EpisodeSink = {
    write(vector, meta): MemoryEvent {
      try {
        const res = store.write({ vector, caption: meta.caption, source: meta.source, frameStampNs: meta.stampNs });
        syncMirror();
        const kind = res.action === 'merged' ? 'merge' : res.action === 'replaced' ? 'evict' : 'write';
        return { kind, slot: res.slot, caption: meta.caption, source: meta.source, detail: res.action };
      } catch (e) {
        return { kind: 'error', caption: meta.caption, source: meta.source, detail: isBitmarError(e) ? `${e.code}: ${e.message}` : String(e) };
      }
    },
  };
  return {
    store,
    sink,
    fill: () => `${store.stats().used}/${cfg.memory.slots}`,
    used: () => store.stats().used,
    setPolicy: (name) => store.setPolicy(policySpec(cfg, name)),
    close: () => store.close(),
  };
}
