import { join } from 'node:path';
import { SqliteEpisodicStore } from '../../src/memory/sqlite-store.js';
import { ManualTimers, removeTempDirs, tempDir } from './helpers.js';
import { storeContract } from './store-contract.js';

// Syncs only on close (the timer never fires), so every close in the contract also writes the database.
storeContract(
  'SqliteEpisodicStore',
  (o) => SqliteEpisodicStore.open({ ...o, path: join(tempDir(), 'memory.sqlite'), timers: new ManualTimers() }),
  { runs: 25 },
);

after(removeTempDirs);
