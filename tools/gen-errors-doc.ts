// Regenerates docs/errors.md from src/errors.ts: `node --import tsx tools/gen-errors-doc.ts`.
import { writeFileSync } from 'node:fs';
import { ERROR_CODES } from '../src/errors.js';
import { renderErrorsDoc } from '../src/errors-doc.js';

writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc(ERROR_CODES));
