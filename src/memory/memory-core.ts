/**
 * The memory itself, shared by both stores: the slot table (struct of arrays), placement through the
 * eviction policy, merges, expiry, the archive index, recall and R1 read updates. Subclasses decide where
 * archived metadata lives and what a change costs (nothing in RAM; a dirty mark synced later in SQLite),
 * through the protected hooks at the bottom.
 */
import { BitmarError } from '../errors.js';
import { ArchiveIndex } from './archive-index.js';
import { createPolicy, resolvePolicy, type EvictionPolicy, type IncomingEpisode, type SlotView } from './eviction/index.js';
import { expiredSlots } from './eviction/ttl.js';
import { checkK, TopK } from './recall.js';
import { SeededRandom } from './rng.js';
import type {
  ArchivedEpisode,
  ArchiveReason,
  EpisodeInput,
  EpisodeRecord,
  EpisodicStore,
  EpisodicStoreOptions,
  LiveVectors,
  MemoryStats,
  PolicyConfig,
  PolicySpec,
  Pose,
  QueryOptions,
  RecallHit,
  SlotRecord,
  WriteResult,
} from './store.js';
import { CHUNK_ROWS, createDotKernel, type DotKernel } from './dot-kernel.js';
import { checkedVector, l2norm } from './vectors.js';

export const DEFAULT_SLOTS = 512;
export const DEFAULT_ARCHIVE_CAP = 100_000;
export const DEFAULT_POLICY: PolicySpec = 'similarity-merge';

/** The counters a store persists with its slots (sqlite: the `counters` meta row). */
export interface CoreCounters {
  nextEpisodeId: number;
  nextArchiveId: number;
  /** Logical time: +1 per write and per recorded read. */
  tick: number;
  offered: number;
  evictions: number;
  expired: number;
  merges: number;
  discarded: number;
  rejected: number;
  posesDropped: number;
  archiveDropped: number;
  /** Episodes removed by `clear`. */
  cleared: number;
  rngState: number;
}

/** Per-slot metadata that is not a number. */
interface SlotText {
  caption: string;
  source: string;
  frameStampNs: bigint | null;
  pose: Pose | null;
}

/** What the persistence layer adds to `stats()`. */
export interface PersistenceStats {
  readonly persistent: boolean;
  readonly writeErrors: number;
  readonly lastWriteError: string | null;
  readonly pendingWrites: number;
  readonly lastSyncMs: number | null;
  readonly skippedRows: number;
  readonly recoveredFrom: string | null;
}

type EpisodeFields = Omit<EpisodeRecord, 'episodeId' | 'vector'>;

export abstract class MemoryCore implements EpisodicStore {
  readonly width: number;
  readonly capacity: number;
  abstract readonly path: string | null;

  protected readonly archiveCap: number;
  protected readonly clock: () => number;
  protected readonly random: SeededRandom;
  protected counters: CoreCounters;
  protected readonly index: ArchiveIndex;
  protected closed = false;

  private policyConfig: PolicyConfig;
  private policyImpl: EvictionPolicy;
  private readonly view: SlotView;
  private readonly slotKernel: DotKernel;
  private readonly text: (SlotText | null)[];
  private readonly episodeIds: Float64Array;
  private readonly firstSeenMs: Float64Array;
  private usedCount = 0;
  private live: LiveVectors | null = null;
  private loading = false;
  private liveVersion = 0;

  protected constructor(options: EpisodicStoreOptions & { readonly width: number }) {
    this.width = checkInt('width', options.width, 1, 65_536);
    this.capacity = checkInt('slots', options.slots ?? DEFAULT_SLOTS, 1, 1_000_000);
    this.archiveCap = checkInt('archiveCap', options.archiveCap ?? DEFAULT_ARCHIVE_CAP, 0, 10_000_000);
    this.clock = options.clock ?? Date.now;
    this.random = new SeededRandom(checkInt('seed', options.seed ?? 1, 0, 2 ** 32 - 1));
    this.policyConfig = resolvePolicy(options.policy ?? DEFAULT_POLICY);
    this.policyImpl = createPolicy(this.policyConfig);
    this.counters = {
      nextEpisodeId: 1,
      nextArchiveId: 1,
      tick: 0,
      offered: 0,
      evictions: 0,
      expired: 0,
      merges: 0,
      discarded: 0,
      rejected: 0,
      posesDropped: 0,
      archiveDropped: 0,
      cleared: 0,
      rngState: this.random.seedState,
    };
    const K = this.capacity;
    const f64 = (): Float64Array => new Float64Array(K);
    // The slot vectors live in the dot kernel's memory (sized once, never grown, so the view stays valid):
    // one SIMD pass scores a vector against every slot (similarity-merge, recall).
    this.slotKernel = createDotKernel(this.width);
    this.slotKernel.ensureBytes(this.slotKernel.rowsOffset + K * this.width * 4);
    const rowsBase = this.slotKernel.rowsOffset / 4;
    const slotScores = new Float32Array(K);
    this.view = {
      capacity: K,
      width: this.width,
      used: new Uint8Array(K),
      vectors: this.slotKernel.f32().subarray(rowsBase, rowsBase + K * this.width),
      dotAll: (v) => this.dotAll(v, slotScores),
      norms: f64(),
      insertTick: f64(),
      touchTick: f64(),
      writeCount: f64(),
      readCount: f64(),
      usage: f64(),
      age: f64(),
      importance: f64(),
      quality: f64(),
      lastSeenMs: f64(),
    };
    this.text = new Array<SlotText | null>(K).fill(null);
    this.episodeIds = f64();
    this.firstSeenMs = f64();
    this.index = new ArchiveIndex(this.width);
  }

  // ---- EpisodicStore ----------------------------------------------------------------------------

  get policy(): PolicyConfig {
    return this.policyConfig;
  }

  write(episode: EpisodeInput): WriteResult {
    this.assertOpen();
    let vector: Float32Array;
    let nowMs: number;
    try {
      vector = checkedVector(episode.vector, this.width);
      nowMs = episode.timeMs ?? this.clock();
      checkFinite('timeMs', nowMs);
      if (episode.importance !== undefined) checkFinite('importance', episode.importance);
      if (episode.quality !== undefined) checkFinite('quality', episode.quality);
    } catch (e) {
      this.counters.rejected++;
      this.changed();
      throw e;
    }
    const pose = this.checkedPose(episode.pose);
    const c = this.counters;
    c.offered++;
    c.tick++;
    const expired = this.expireAt(nowMs, this.policyImpl.expired?.(this.view, nowMs) ?? []);
    const norm = l2norm(vector);
    const incoming: IncomingEpisode = { vector, norm, nowMs, offered: c.offered };
    const target = this.policyImpl.mergeTarget?.(this.view, incoming) ?? -1;
    let result: WriteResult;
    if (target >= 0) {
      this.mergeInto(target, vector, norm, episode, pose, nowMs);
      result = { action: 'merged', slot: target, episodeId: this.episodeIds[target]!, expired };
    } else {
      const fields: EpisodeFields = {
        firstSeenMs: nowMs,
        lastSeenMs: nowMs,
        writeCount: 1,
        readCount: 0,
        usage: 1,
        age: this.maxLiveAge() + 1,
        importance: episode.importance ?? 1,
        quality: episode.quality ?? norm,
        caption: episode.caption ?? '',
        source: episode.source ?? '',
        frameStampNs: typeof episode.frameStampNs === 'bigint' ? episode.frameStampNs : null,
        pose,
      };
      result = this.place(vector, norm, fields, incoming, expired, -1);
    }
    this.changed();
    return result;
  }

  liveVectors(): LiveVectors {
    this.assertOpen();
    if (this.live === null) {
      const { width, view } = this;
      const slots = new Float32Array(this.usedCount * width);
      const slotIds = new Int32Array(this.usedCount);
      let row = 0;
      // Copy each run of consecutive live slots at once (a full memory is one run: one memcpy).
      for (let s = 0; s < this.capacity; ) {
        if (view.used[s] === 0) {
          s++;
          continue;
        }
        const start = s;
        while (s < this.capacity && view.used[s] === 1) slotIds[row + s - start] = s++;
        slots.set(view.vectors.subarray(start * width, s * width), row * width);
        row += s - start;
      }
      this.live = { slots, count: row, slotIds, width, version: this.liveVersion };
    }
    return this.live;
  }

  recordRead(weights: Float32Array | readonly number[], slotIds?: Int32Array | readonly number[]): void {
    this.assertOpen();
    const ids = slotIds ?? this.liveVectors().slotIds;
    if (weights.length !== ids.length) {
      throw new BitmarError(
        'BITMAR_ERR_MEMORY_VECTOR',
        `recordRead: ${weights.length} weights for ${ids.length} slots; pass one weight per live slot`,
      );
    }
    for (let i = 0; i < weights.length; i++) {
      if (!Number.isFinite(weights[i]!)) {
        throw new BitmarError('BITMAR_ERR_MEMORY_VECTOR', `recordRead: weight ${i} is not finite (${String(weights[i])})`);
      }
    }
    const v = this.view;
    const tick = ++this.counters.tick;
    const threshold = ids.length > 0 ? 1 / ids.length : Infinity;
    for (let i = 0; i < ids.length; i++) {
      const s = ids[i]!;
      if (!(s >= 0 && s < this.capacity) || v.used[s] === 0) continue;
      const w = weights[i]!;
      v.usage[s]! += w;
      v.importance[s] = 0.9 * v.importance[s]! + 0.1 * (w + 1e-8);
      if (w >= threshold) {
        v.readCount[s]!++;
        v.touchTick[s] = tick;
      }
      this.onSlotChanged(s, false);
    }
    this.changed();
  }

  query(vector: Float32Array | readonly number[], k: number, options: QueryOptions = {}): RecallHit[] {
    this.assertOpen();
    const q = checkedVector(vector, this.width, 'query vector');
    checkK(k);
    const qn = l2norm(q);
    const unit = new Float32Array(this.width);
    if (qn > 0) for (let j = 0; j < this.width; j++) unit[j] = q[j]! / qn;
    const { view, width } = this;
    const liveTop = new TopK(k);
    const dots = view.dotAll(unit);
    for (let s = 0; s < this.capacity; s++) {
      if (view.used[s] === 0) continue;
      liveTop.push(view.norms[s]! > 0 ? dots[s]! / view.norms[s]! : 0, s);
    }
    const archiveTop = new TopK(k);
    if (options.includeArchive !== false) this.index.search(unit, archiveTop);
    const hits: RecallHit[] = [];
    let a = 0;
    let b = 0;
    while (hits.length < k && (a < liveTop.size || b < archiveTop.size)) {
      const takeLive = b >= archiveTop.size || (a < liveTop.size && liveTop.scores[a]! >= archiveTop.scores[b]!);
      if (takeLive) {
        const s = liveTop.keys[a]!;
        hits.push({ ...this.hitFields(this.slotRecordUnchecked(s)), score: clampCos(liveTop.scores[a++]!), slot: s });
      } else {
        const id = archiveTop.keys[b]!;
        const score = clampCos(archiveTop.scores[b++]!);
        const rec = this.archiveRecord(id);
        if (rec !== undefined) hits.push({ ...this.hitFields(rec), score, archiveId: id });
      }
    }
    return hits;
  }

  setPolicy(policy: PolicySpec): void {
    this.assertOpen();
    this.policyConfig = resolvePolicy(policy);
    this.policyImpl = createPolicy(this.policyConfig);
    this.changed();
  }

  expire(nowMs: number = this.clock(), ttlMs?: number): number {
    this.assertOpen();
    const slots =
      ttlMs !== undefined ? expiredSlots(this.view, nowMs, ttlMs) : (this.policyImpl.expired?.(this.view, nowMs) ?? []);
    const n = this.expireAt(nowMs, slots);
    if (n > 0) this.changed();
    return n;
  }

  slot(index: number): SlotRecord | undefined {
    this.assertOpen();
    if (!Number.isInteger(index) || index < 0 || index >= this.capacity || this.view.used[index] === 0) return undefined;
    return this.slotRecordUnchecked(index);
  }

  slots(): SlotRecord[] {
    this.assertOpen();
    const out: SlotRecord[] = [];
    for (let s = 0; s < this.capacity; s++) if (this.view.used[s] === 1) out.push(this.slotRecordUnchecked(s));
    return out;
  }

  abstract archived(): Iterable<ArchivedEpisode>;

  restore(record: Omit<EpisodeRecord, 'episodeId'>, options: { slot?: number } = {}): WriteResult {
    this.assertOpen();
    const { vector, fields } = this.checkedRecord(record);
    const c = this.counters;
    c.offered++;
    c.tick++;
    const norm = l2norm(vector);
    const incoming: IncomingEpisode = { vector, norm, nowMs: this.clock(), offered: c.offered };
    const result = this.place(vector, norm, fields, incoming, 0, options.slot ?? -1);
    this.changed();
    return result;
  }

  appendArchive(record: Omit<EpisodeRecord, 'episodeId'>, reason: ArchiveReason = 'imported'): number | null {
    this.assertOpen();
    const { vector, fields } = this.checkedRecord(record);
    this.counters.offered++;
    const id = this.archiveEpisode({ ...fields, vector, episodeId: this.counters.nextEpisodeId++ }, reason);
    this.changed();
    return id;
  }

  clear(options: { archive?: boolean } = {}): void {
    this.assertOpen();
    const archive = options.archive !== false;
    this.counters.cleared += this.usedCount + (archive ? this.index.size : 0);
    for (let s = 0; s < this.capacity; s++) if (this.view.used[s] === 1) this.freeSlot(s, false);
    if (archive) this.index.clear();
    this.onCleared(archive);
    this.changed();
  }

  stats(): MemoryStats {
    const c = this.counters;
    return {
      slots: this.capacity,
      used: this.usedCount,
      width: this.width,
      archiveSize: this.index.size,
      archiveCap: this.archiveCap,
      path: this.path,
      policy: this.policyConfig.name,
      policyConfig: this.policyConfig,
      evictions: c.evictions,
      expired: c.expired,
      merges: c.merges,
      discarded: c.discarded,
      rejected: c.rejected,
      posesDropped: c.posesDropped,
      archiveDropped: c.archiveDropped,
      cleared: c.cleared,
      offered: c.offered,
      ...this.persistenceStats(),
    };
  }

  abstract flush(): void;
  abstract close(): void;

  // ---- placement ----------------------------------------------------------------------------------

  /** Puts an episode into `hint` (when free), a free slot, or the policy's victim; or archives it. */
  private place(
    vector: Float32Array,
    norm: number,
    fields: EpisodeFields,
    incoming: IncomingEpisode,
    expired: number,
    hint: number,
  ): WriteResult {
    let slot = Number.isInteger(hint) && hint >= 0 && hint < this.capacity && this.view.used[hint] === 0 ? hint : -1;
    if (slot < 0) slot = this.firstFree();
    let action: WriteResult['action'] = 'inserted';
    let evicted: WriteResult['evicted'];
    if (slot < 0) {
      const victim = this.policyImpl.victim(this.view, incoming, () => this.nextRandom());
      if (victim < 0) {
        const episodeId = this.counters.nextEpisodeId++;
        this.archiveEpisode({ ...fields, vector, episodeId }, 'discarded');
        this.counters.discarded++;
        return { action: 'discarded', slot: -1, episodeId, expired };
      }
      evicted = this.archiveSlot(victim, 'evicted');
      this.counters.evictions++;
      slot = victim;
      action = 'replaced';
    }
    const episodeId = this.counters.nextEpisodeId++;
    this.fillSlot(slot, vector, norm, { ...fields, episodeId }, this.counters.tick, this.counters.tick);
    return evicted === undefined ? { action, slot, episodeId, expired } : { action, slot, episodeId, evicted, expired };
  }

  /** v ← normalize((1−α)·v̂ + α·ê): the slot moves toward the new episode and stays a unit vector. */
  private mergeInto(s: number, vector: Float32Array, norm: number, ep: EpisodeInput, pose: Pose | null, nowMs: number): void {
    const cfg = this.policyConfig;
    const alpha = cfg.name === 'similarity-merge' ? cfg.alpha : 0.2;
    const { view, width } = this;
    const o = s * width;
    const oldInv = view.norms[s]! > 0 ? 1 / view.norms[s]! : 0;
    const newInv = norm > 0 ? 1 / norm : 0;
    let sq = 0;
    for (let j = 0; j < width; j++) {
      const m = (1 - alpha) * view.vectors[o + j]! * oldInv + alpha * vector[j]! * newInv;
      view.vectors[o + j] = m;
      sq += m * m;
    }
    const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    for (let j = 0; j < width; j++) view.vectors[o + j]! *= inv;
    view.norms[s] = l2norm(view.vectors, o, width);
    view.writeCount[s]!++;
    view.usage[s]!++;
    view.age[s] = this.maxLiveAge() + 1;
    view.quality[s] = ep.quality ?? norm;
    if (ep.importance !== undefined) view.importance[s] = ep.importance;
    view.lastSeenMs[s] = nowMs;
    view.touchTick[s] = this.counters.tick;
    const t = this.text[s]!;
    this.text[s] = {
      caption: ep.caption ?? t.caption,
      source: ep.source ?? t.source,
      frameStampNs: typeof ep.frameStampNs === 'bigint' ? ep.frameStampNs : t.frameStampNs,
      pose: pose ?? t.pose,
    };
    this.counters.merges++;
    this.invalidateLive();
    this.onSlotChanged(s, true);
  }

  private expireAt(_nowMs: number, slots: readonly number[]): number {
    for (const s of slots) {
      this.archiveSlot(s, 'expired');
      this.counters.expired++;
      this.counters.evictions++;
    }
    return slots.length;
  }

  /** Moves a live slot to the archive and frees it. */
  protected archiveSlot(s: number, reason: ArchiveReason): { episodeId: number; archiveId: number | null } {
    const rec = this.slotRecordUnchecked(s);
    const archiveId = this.archiveEpisode(rec, reason);
    this.freeSlot(s, true);
    return { episodeId: rec.episodeId, archiveId };
  }

  /** Appends to the archive (counted as dropped when the cap is 0) and trims it to the cap. */
  protected archiveEpisode(rec: EpisodeRecord, reason: ArchiveReason): number | null {
    if (this.archiveCap === 0) {
      this.counters.archiveDropped++;
      return null;
    }
    const archiveId = this.counters.nextArchiveId++;
    const archived: ArchivedEpisode = {
      episodeId: rec.episodeId,
      vector: Float32Array.from(rec.vector),
      firstSeenMs: rec.firstSeenMs,
      lastSeenMs: rec.lastSeenMs,
      writeCount: rec.writeCount,
      readCount: rec.readCount,
      usage: rec.usage,
      age: rec.age,
      importance: rec.importance,
      quality: rec.quality,
      caption: rec.caption,
      source: rec.source,
      frameStampNs: rec.frameStampNs,
      pose: rec.pose,
      archiveId,
      archivedMs: this.clock(),
      reason,
    };
    this.index.appendNormalized(archiveId, archived.vector);
    this.onArchived(archived);
    this.trimArchive();
    return archiveId;
  }

  /** Drops the oldest archive rows beyond the cap (counted). */
  protected trimArchive(): void {
    while (this.index.size > this.archiveCap) {
      const id = this.index.dropOldest();
      if (id === undefined) break;
      this.counters.archiveDropped++;
      this.onArchiveDropped(id);
    }
  }

  private fillSlot(
    s: number,
    vector: Float32Array,
    norm: number,
    rec: EpisodeFields & { episodeId: number },
    insertTick: number,
    touchTick: number,
  ): void {
    const v = this.view;
    if (v.used[s] === 0) this.usedCount++;
    v.used[s] = 1;
    v.vectors.set(vector, s * this.width);
    v.norms[s] = norm;
    v.insertTick[s] = insertTick;
    v.touchTick[s] = touchTick;
    v.writeCount[s] = rec.writeCount;
    v.readCount[s] = rec.readCount;
    v.usage[s] = rec.usage;
    v.age[s] = rec.age;
    v.importance[s] = rec.importance;
    v.quality[s] = rec.quality;
    v.lastSeenMs[s] = rec.lastSeenMs;
    this.firstSeenMs[s] = rec.firstSeenMs;
    this.episodeIds[s] = rec.episodeId;
    this.text[s] = { caption: rec.caption, source: rec.source, frameStampNs: rec.frameStampNs, pose: rec.pose };
    this.invalidateLive();
    if (!this.loading) this.onSlotChanged(s, true);
  }

  private freeSlot(s: number, notify: boolean): void {
    const v = this.view;
    if (v.used[s] === 1) this.usedCount--;
    v.used[s] = 0;
    v.vectors.fill(0, s * this.width, (s + 1) * this.width);
    v.norms[s] = 0;
    this.text[s] = null;
    this.invalidateLive();
    if (notify) this.onSlotChanged(s, true);
  }

  private firstFree(): number {
    if (this.usedCount === this.capacity) return -1;
    for (let s = 0; s < this.capacity; s++) if (this.view.used[s] === 0) return s;
    return -1;
  }

  private maxLiveAge(): number {
    let m = 0;
    for (let s = 0; s < this.capacity; s++) if (this.view.used[s] === 1 && this.view.age[s]! > m) m = this.view.age[s]!;
    return m;
  }

  private nextRandom(): number {
    const r = this.random.next();
    this.counters.rngState = this.random.seedState;
    return r;
  }

  /** out[s] = vectors[s]·v for every slot (free slots hold zeros), in CHUNK_ROWS passes of the kernel. */
  private dotAll(v: Float32Array, out: Float32Array): Float32Array {
    const k = this.slotKernel;
    k.f32().set(v, 0);
    const sBase = k.scoresOffset / 4;
    for (let r = 0; r < this.capacity; r += CHUNK_ROWS) {
      const n = Math.min(CHUNK_ROWS, this.capacity - r);
      k.dots(r, n);
      out.set(k.f32().subarray(sBase, sBase + n), r);
    }
    return out;
  }

  private invalidateLive(): void {
    this.live = null;
    this.liveVersion++;
  }

  // ---- records ------------------------------------------------------------------------------------

  private slotRecordUnchecked(s: number): SlotRecord {
    const v = this.view;
    const t = this.text[s]!;
    return {
      slot: s,
      episodeId: this.episodeIds[s]!,
      vector: v.vectors.slice(s * this.width, (s + 1) * this.width),
      firstSeenMs: this.firstSeenMs[s]!,
      lastSeenMs: v.lastSeenMs[s]!,
      writeCount: v.writeCount[s]!,
      readCount: v.readCount[s]!,
      usage: v.usage[s]!,
      age: v.age[s]!,
      importance: v.importance[s]!,
      quality: v.quality[s]!,
      caption: t.caption,
      source: t.source,
      frameStampNs: t.frameStampNs,
      pose: t.pose,
      insertTick: v.insertTick[s]!,
      touchTick: v.touchTick[s]!,
    };
  }

  private hitFields(rec: EpisodeRecord): Omit<RecallHit, 'score'> {
    return {
      episodeId: rec.episodeId,
      caption: rec.caption,
      firstSeenMs: rec.firstSeenMs,
      lastSeenMs: rec.lastSeenMs,
      source: rec.source,
      frameStampNs: rec.frameStampNs,
      pose: rec.pose,
    };
  }

  private checkedPose(pose: Pose | null | undefined): Pose | null {
    if (pose === undefined || pose === null) return null;
    if (isPose(pose)) return { ...pose };
    this.counters.posesDropped++;
    return null;
  }

  /** Validates an imported record (BITMAR_ERR_MEMORY_VECTOR); counts it as rejected when invalid. */
  private checkedRecord(record: Omit<EpisodeRecord, 'episodeId'>): { vector: Float32Array; fields: EpisodeFields } {
    try {
      const vector = checkedVector(record.vector, this.width);
      for (const key of ['firstSeenMs', 'lastSeenMs', 'writeCount', 'readCount', 'usage', 'age', 'importance', 'quality'] as const) {
        checkFinite(key, record[key]);
      }
      const pose = record.pose === null || isPose(record.pose) ? record.pose : null;
      return {
        vector,
        fields: {
          firstSeenMs: record.firstSeenMs,
          lastSeenMs: record.lastSeenMs,
          writeCount: record.writeCount,
          readCount: record.readCount,
          usage: record.usage,
          age: record.age,
          importance: record.importance,
          quality: record.quality,
          caption: String(record.caption),
          source: String(record.source),
          frameStampNs: typeof record.frameStampNs === 'bigint' ? record.frameStampNs : null,
          pose: pose === null ? null : { ...pose },
        },
      };
    } catch (e) {
      this.counters.rejected++;
      throw e;
    }
  }

  protected assertOpen(): void {
    if (this.closed) throw new BitmarError('BITMAR_ERR_MEMORY_WRITE', 'the memory store is closed; open it again');
  }

  // ---- loading (subclasses, at open; no hooks fire) -----------------------------------------------

  /** Puts a stored slot back at open. */
  protected loadSlot(rec: SlotRecord): void {
    this.fillSlotQuiet(rec);
  }

  private fillSlotQuiet(rec: SlotRecord): void {
    this.loading = true;
    try {
      this.fillSlot(rec.slot, rec.vector, l2norm(rec.vector), rec, rec.insertTick, rec.touchTick);
    } finally {
      this.loading = false;
    }
  }

  /** Puts a stored archive row back into the index at open (ids must increase). */
  protected loadArchiveVector(archiveId: number, vector: Float32Array): void {
    this.index.appendNormalized(archiveId, vector);
  }

  /** Restores counters and the policy saved by a previous session. */
  protected loadState(counters: CoreCounters, policy: PolicyConfig | null): void {
    this.counters = { ...counters };
    this.random.seedState = counters.rngState;
    if (policy !== null) {
      this.policyConfig = resolvePolicy(policy);
      this.policyImpl = createPolicy(this.policyConfig);
    }
  }

  // ---- hooks --------------------------------------------------------------------------------------

  /** A slot changed: `full` for content (vector, metadata, freed), false for read statistics only. */
  protected onSlotChanged(_slot: number, _full: boolean): void {}
  protected onArchived(_episode: ArchivedEpisode): void {}
  protected onArchiveDropped(_archiveId: number): void {}
  protected onCleared(_archive: boolean): void {}
  /** Called after every public mutation (counters changed too). */
  protected changed(): void {}
  protected abstract archiveRecord(archiveId: number): ArchivedEpisode | undefined;
  protected abstract persistenceStats(): PersistenceStats;
}

function clampCos(x: number): number {
  return x > 1 ? 1 : x < -1 ? -1 : x;
}

export function isPose(p: unknown): p is Pose {
  if (typeof p !== 'object' || p === null) return false;
  const r = p as Record<string, unknown>;
  for (const k of ['x', 'y', 'z', 'qx', 'qy', 'qz', 'qw']) {
    const x = r[k];
    if (typeof x !== 'number' || !Number.isFinite(x)) return false;
  }
  return typeof r['frame'] === 'string';
}

function checkFinite(what: string, x: number): void {
  if (typeof x !== 'number' || !Number.isFinite(x)) {
    throw new BitmarError('BITMAR_ERR_MEMORY_VECTOR', `episode ${what} must be a finite number, got ${String(x)}`);
  }
}

/** Validates an integer option; BITMAR_ERR_CONFIG_INVALID states the range. */
export function checkInt(key: string, x: unknown, min: number, max: number): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) {
    throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `memory.${key}: ${String(x)} is invalid; allowed: an integer in [${min}, ${max}]`);
  }
  return x;
}
