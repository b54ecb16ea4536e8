import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BitmarError, ERROR_CODES, isBitmarError } from '../src/errors.js';
import { renderErrorsDoc } from '../src/errors-doc.js';

describe('error catalogue', () => {
  it('docs/errors.md is generated from src/errors.ts and up to date', () => {
    const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
    assert.equal(doc, renderErrorsDoc(ERROR_CODES), 'run: node --import tsx tools/gen-errors-doc.ts');
  });

  it('codes follow BITMAR_ERR_<AREA>[_<WHAT>]', () => {
    for (const code of Object.keys(ERROR_CODES)) assert.match(code, /^BITMAR_ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/);
  });

  it('BitmarError keeps code, message and cause', () => {
    const cause = new Error('root');
    const e = new BitmarError('BITMAR_ERR_MODEL_FORMAT', 'bad magic', { cause });
    assert.ok(isBitmarError(e, 'BITMAR_ERR_MODEL_FORMAT'));
    assert.ok(!isBitmarError(e, 'BITMAR_ERR_MODEL_ARCH'));
    assert.equal(e.cause, cause);
  });
});
