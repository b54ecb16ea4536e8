import { InMemoryEpisodicStore } from '../../src/memory/in-memory-store.js';
import { removeTempDirs } from './helpers.js';
import { storeContract } from './store-contract.js';

storeContract('InMemoryEpisodicStore', (o) => new InMemoryEpisodicStore(o), { runs: 60 });

after(removeTempDirs);
