/**
 * The episodic memory interface (issue #6). K slots of episode vectors of the model's width d
 * (docs/bitmar-stream.md §3: unit vectors the model reads as M [K, d]), with the metadata R1 keeps per
 * slot (reference spec §3.7: age, usage, quality, importance), an archive of evicted episodes that stays
 * searchable, and run-time selectable eviction policies (src/memory/eviction/).
 *
 * Two implementations pass one contract suite (test/memory/store-contract.ts):
 * `InMemoryEpisodicStore` (in-memory-store.ts) and `SqliteEpisodicStore` (sqlite-store.ts).
 * docs/memory.md describes the semantics in full.
 */
import type { PolicyConfig, PolicyName, PolicySpec } from './eviction/policy.js';

export type { PolicyConfig, PolicyName, PolicySpec } from './eviction/policy.js';

/** A pose (e.g. from an odometry topic): position in metres and orientation quaternion, in `frame`. */
export interface Pose {
  readonly x: number;
  readonly y: number;
  readonly z: number;
  readonly qx: number;
  readonly qy: number;
  readonly qz: number;
  readonly qw: number;
  /** The ROS frame_id the pose is expressed in, e.g. `odom` or `map`. */
  readonly frame: string;
}

/** One episode to write: the pipeline writes one per caption batch. */
export interface EpisodeInput {
  /** Width d, finite values. The model's episodes are unit vectors; other vectors are stored as given. */
  readonly vector: Float32Array | readonly number[];
  /** The caption made from the batch ('' when none). */
  readonly caption?: string;
  /** Where the frames came from: a ROS topic, an MQTT topic/device, `synthetic`… ('' when unknown). */
  readonly source?: string;
  /** Capture stamp of the newest frame, nanoseconds since the epoch. */
  readonly frameStampNs?: bigint | null;
  /** Robot pose at capture time, when a pose topic is configured. Non-finite poses are dropped (counted). */
  readonly pose?: Pose | null;
  /** R1 importance; default 1 (R1 initialises importance to 1). */
  readonly importance?: number;
  /** R1 quality; default ‖vector‖₂ (R1: quality = ‖n‖₂ of the written episode). */
  readonly quality?: number;
  /** Observation time, milliseconds since the epoch; default the store's clock. */
  readonly timeMs?: number;
}

/** Everything stored about one episode. */
export interface EpisodeRecord {
  /** Unique within a store, increasing, never reused (not even after `clear`). */
  readonly episodeId: number;
  /** Width d (a copy: changing it does not change the store). */
  readonly vector: Float32Array;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  /** Writes into this episode: 1, plus one per similarity merge. */
  readonly writeCount: number;
  /** Model reads that attended to this episode at or above the uniform weight (see `recordRead`). */
  readonly readCount: number;
  /** R1 usage: +1 per write, +w per read (w = attention weight). */
  readonly usage: number;
  /** R1 age: max(age over live slots) + 1 at each write, so larger is newer. */
  readonly age: number;
  /** R1 importance: 0.9·importance + 0.1·(w + 1e-8) per read; starts at 1. */
  readonly importance: number;
  /** R1 quality. */
  readonly quality: number;
  readonly caption: string;
  readonly source: string;
  readonly frameStampNs: bigint | null;
  readonly pose: Pose | null;
}

/** A live slot. */
export interface SlotRecord extends EpisodeRecord {
  readonly slot: number;
  /** Logical time (the store's tick) the episode entered the slot: fifo evicts the smallest. */
  readonly insertTick: number;
  /** Logical time of the last write or read: lru evicts the smallest. */
  readonly touchTick: number;
}

/** Why an episode left the live slots. */
export type ArchiveReason = 'evicted' | 'expired' | 'discarded' | 'capacity' | 'imported';

/** An archived episode. */
export interface ArchivedEpisode extends EpisodeRecord {
  /** Increasing; the oldest (smallest) rows are dropped first when the archive is full. */
  readonly archiveId: number;
  readonly archivedMs: number;
  readonly reason: ArchiveReason;
}

/** What `write` did. */
export interface WriteResult {
  /**
   * inserted: into a free slot; replaced: a victim was archived and its slot reused; merged: folded into
   * a similar slot (similarity-merge); discarded: the policy kept the memory as it was and archived the
   * new episode (reservoir).
   */
  readonly action: 'inserted' | 'replaced' | 'merged' | 'discarded';
  /** The slot written, or −1 when discarded. */
  readonly slot: number;
  /** The episode's id; for a merge, the id of the episode merged into. */
  readonly episodeId: number;
  /** The episode that left the slot, when one did. */
  readonly evicted?: { readonly episodeId: number; readonly archiveId: number | null };
  /** Slots expired (ttl) by this write. */
  readonly expired: number;
}

/**
 * The live slots as the model reads them: `slots` is [count, d] row-major, row i is slot `slotIds[i]`.
 * A snapshot: built on the first call after a change, then returned as the same object until the next
 * change; the store never mutates a snapshot it has handed out.
 */
export interface LiveVectors {
  readonly slots: Float32Array;
  readonly count: number;
  readonly slotIds: Int32Array;
  readonly width: number;
  /** Increases at every change of the live vectors. */
  readonly version: number;
}

/** One recall result. */
export interface RecallHit {
  /** Cosine similarity to the query, in [−1, 1]. */
  readonly score: number;
  readonly episodeId: number;
  readonly caption: string;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  readonly source: string;
  readonly frameStampNs: bigint | null;
  readonly pose: Pose | null;
  /** Set for a live episode. */
  readonly slot?: number;
  /** Set for an archived episode. */
  readonly archiveId?: number;
}

export interface QueryOptions {
  /** Search the archive too; default true. */
  readonly includeArchive?: boolean;
}

export interface MemoryStats {
  /** K. */
  readonly slots: number;
  /** Live slots. */
  readonly used: number;
  /** d. */
  readonly width: number;
  readonly archiveSize: number;
  readonly archiveCap: number;
  /** The database file, or null for an in-memory store. */
  readonly path: string | null;
  readonly policy: PolicyName;
  readonly policyConfig: PolicyConfig;
  /** Episodes that left the live slots (evicted, expired, or trimmed when K shrank). */
  readonly evictions: number;
  readonly expired: number;
  readonly merges: number;
  /** New episodes archived at once by the reservoir policy. */
  readonly discarded: number;
  /** Writes refused: wrong width or a non-finite value. */
  readonly rejected: number;
  /** Poses dropped because a field was not finite (the episode itself was kept). */
  readonly posesDropped: number;
  /** Archive rows dropped because the archive was full (oldest first). */
  readonly archiveDropped: number;
  /** Episodes removed by `clear`. */
  readonly cleared: number;
  /**
   * Episodes accepted: writes, restores and imported archive rows (the reservoir's n). Always equals
   * used + archiveSize + archiveDropped + merges + cleared: nothing is lost or duplicated.
   */
  readonly offered: number;
  /** Whether changes reach disk (false for in-memory and read-only stores). */
  readonly persistent: boolean;
  /** Failed syncs to disk (the in-memory state keeps working and the sync is retried). */
  readonly writeErrors: number;
  readonly lastWriteError: string | null;
  /** Changes not yet synced (dirty slots + pending archive rows). */
  readonly pendingWrites: number;
  /** Wall time of the last successful sync, ms since the epoch, or null. */
  readonly lastSyncMs: number | null;
  /** Stored rows skipped at open because they were unreadable (wrong blob size). */
  readonly skippedRows: number;
  /** Where a corrupt database was moved when `recoverCorrupt` was set, else null. */
  readonly recoveredFrom: string | null;
}

/** The episodic memory. Every method throws a `BitmarError` with a `BITMAR_ERR_MEMORY_*` code. */
export interface EpisodicStore {
  /** d. */
  readonly width: number;
  /** K. */
  readonly capacity: number;
  /** The database file, or null for an in-memory store. */
  readonly path: string | null;
  /** The active eviction policy, defaults filled in. */
  readonly policy: PolicyConfig;

  /**
   * Applies one episode at once (in memory) and schedules its sync. Throws BITMAR_ERR_MEMORY_VECTOR (and
   * counts it in `stats().rejected`) for a vector of the wrong width or with NaN/Infinity; nothing is stored.
   */
  write(episode: EpisodeInput): WriteResult;
  /** The live slots for the model's memory read; cheap (cached until the next change). */
  liveVectors(): LiveVectors;
  /**
   * Records one model read (R1 §3.7 read side effects): per slot, usage += w and importance ←
   * 0.9·importance + 0.1·(w + 1e-8); slots with w ≥ 1/count also count a read and become most recently
   * used. `weights[i]` belongs to `slotIds[i]` (default: the current `liveVectors().slotIds`).
   */
  recordRead(weights: Float32Array | readonly number[], slotIds?: Int32Array | readonly number[]): void;
  /** Top-k episodes by cosine similarity, best first, over the live slots and (by default) the archive. */
  query(vector: Float32Array | readonly number[], k: number, options?: QueryOptions): RecallHit[];
  /** Switches the eviction policy at run time; takes effect at the next write. */
  setPolicy(policy: PolicySpec): void;
  /** Archives every live episode the ttl policy (or `ttlMs`) considers expired; returns how many. */
  expire(nowMs?: number, ttlMs?: number): number;

  /** One live slot, or undefined when the slot is free or out of range. */
  slot(index: number): SlotRecord | undefined;
  /** Every live slot, in slot order. */
  slots(): SlotRecord[];
  /** The archive, oldest first. */
  archived(): Iterable<ArchivedEpisode>;
  /**
   * Puts a full record back as a live episode (import): metadata kept, a new episodeId assigned. Goes to
   * `slot` when given and free, else to a free slot, else the policy's victim is archived (no merging).
   */
  restore(record: Omit<EpisodeRecord, 'episodeId'>, options?: { slot?: number }): WriteResult;
  /** Appends a record to the archive (import); returns its archiveId, or null when the archive cap is 0. */
  appendArchive(record: Omit<EpisodeRecord, 'episodeId'>, reason?: ArchiveReason): number | null;
  /** Removes the live episodes and, unless `archive: false`, the archive. Counters are kept. */
  clear(options?: { archive?: boolean }): void;
  stats(): MemoryStats;
  /** Syncs pending changes now; throws BITMAR_ERR_MEMORY_WRITE (pending changes are kept and retried). */
  flush(): void;
  /** Syncs and closes; throws BITMAR_ERR_MEMORY_WRITE when the final sync fails (the file stays valid). */
  close(): void;
}

/** Options every store takes. Never mutated. */
export interface EpisodicStoreOptions {
  /** d. Required to create a store; must match an existing one. */
  readonly width?: number;
  /** K, 1…1,000,000; default 512. Reopening with a smaller K archives the slots ≥ K (reason `capacity`). */
  readonly slots?: number;
  /** Eviction policy; default the one the store last used, else `similarity-merge`. */
  readonly policy?: PolicySpec;
  /** Archive rows kept, 0…10,000,000; default 100,000. Oldest rows are dropped first (counted). */
  readonly archiveCap?: number;
  /** Seed of the store's random stream (the reservoir policy); default 1. Ignored when reopening. */
  readonly seed?: number;
  /** Wall clock, ms since the epoch; default Date.now. */
  readonly clock?: () => number;
}

/** The database file name inside a state directory. */
export const MEMORY_DB_FILE = 'memory.sqlite';
