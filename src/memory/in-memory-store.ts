/**
 * The episodic memory without persistence: for tests, for `memory.enabled` without a state directory,
 * and as the fallback when the state directory cannot be used. Same semantics as the SQLite store
 * (one contract suite runs against both); the archive's metadata lives in a Map.
 */
import type { ArchivedEpisode, EpisodicStoreOptions } from './store.js';
import { MemoryCore, type PersistenceStats } from './memory-core.js';

export class InMemoryEpisodicStore extends MemoryCore {
  readonly path = null;
  private readonly archive = new Map<number, ArchivedEpisode>();

  /** `width` is required. Throws BITMAR_ERR_CONFIG_INVALID for an option out of range. */
  constructor(options: EpisodicStoreOptions & { readonly width: number }) {
    super(options);
  }

  *archived(): Iterable<ArchivedEpisode> {
    this.assertOpen();
    yield* this.archive.values();
  }

  flush(): void {
    this.assertOpen();
  }

  close(): void {
    this.closed = true;
  }

  protected override archiveRecord(archiveId: number): ArchivedEpisode | undefined {
    return this.archive.get(archiveId);
  }

  protected override onArchived(episode: ArchivedEpisode): void {
    this.archive.set(episode.archiveId, episode);
  }

  protected override onArchiveDropped(archiveId: number): void {
    this.archive.delete(archiveId);
  }

  protected override onCleared(archive: boolean): void {
    if (archive) this.archive.clear();
  }

  protected override persistenceStats(): PersistenceStats {
    return {
      persistent: false,
      writeErrors: 0,
      lastWriteError: null,
      pendingWrites: 0,
      lastSyncMs: null,
      skippedRows: 0,
      recoveredFrom: null,
    };
  }
}
