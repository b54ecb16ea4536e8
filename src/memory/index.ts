/**
 * The episodic memory's public surface: `openEpisodicStore` picks the implementation (a `path` means
 * SQLite, none means in-memory); the types, policies, export/import and the schema helpers are re-exported.
 */
import { InMemoryEpisodicStore } from './in-memory-store.js';
import { SqliteEpisodicStore, type SqliteStoreOptions } from './sqlite-store.js';
import type { EpisodicStore, EpisodicStoreOptions } from './store.js';

export * from './store.js';
export { POLICY_NAMES, resolvePolicy, isPolicyName, DEFAULT_MERGE_ALPHA, DEFAULT_MERGE_THRESHOLD, DEFAULT_TTL_MS } from './eviction/index.js';
export { DEFAULT_ARCHIVE_CAP, DEFAULT_POLICY, DEFAULT_SLOTS } from './memory-core.js';
export { InMemoryEpisodicStore } from './in-memory-store.js';
export { SqliteEpisodicStore, DEFAULT_SYNC_INTERVAL_MS, type SqliteStoreOptions, type SyncTimers } from './sqlite-store.js';
export { exportMemory, importMemory, readImportHeader, EXPORT_FORMAT, EXPORT_VERSION, type ExportSummary, type ImportSummary, type ImportHeader } from './export-format.js';
export { LATEST_SCHEMA_VERSION, MIGRATIONS, migrate, schemaVersion } from './migrations.js';

/** Options of `openEpisodicStore`: with `path`, a SQLite store; without, an in-memory one (width required). */
export type OpenEpisodicStoreOptions = SqliteStoreOptions | (EpisodicStoreOptions & { readonly path?: undefined; readonly width: number });

/**
 * Opens the episodic memory. Throws BITMAR_ERR_MEMORY_OPEN / _SCHEMA (SQLite) or
 * BITMAR_ERR_CONFIG_INVALID (an option out of range).
 */
export function openEpisodicStore(options: OpenEpisodicStoreOptions): EpisodicStore {
  if (options.path === undefined) return new InMemoryEpisodicStore(options);
  return SqliteEpisodicStore.open(options);
}
