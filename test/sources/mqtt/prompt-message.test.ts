import assert from 'node:assert/strict';
import { parsePrompt } from '../../../src/sources/mqtt/prompt-message.js';

describe('MQTT prompt payloads', () => {
  it('accepts UTF-8 text and {"prompt": ...} JSON, trimmed', () => {
    assert.deepEqual(parsePrompt(Buffer.from('  how many circles?\n')), { ok: true, text: 'how many circles?' });
    assert.deepEqual(parsePrompt(Buffer.from('{"prompt":"¿qué color?"}')), { ok: true, text: '¿qué color?' });
    assert.deepEqual(parsePrompt(Buffer.from('{not json} but text')), { ok: true, text: '{not json} but text' });
  });

  it('refuses bad UTF-8, empty, control characters, wrong JSON and overlong prompts', () => {
    const bad = parsePrompt(Buffer.from([0x68, 0xc3, 0x28]));
    assert.ok(!bad.ok && bad.reason === 'invalid_input' && /BITMAR_ERR_PROMPT_INVALID: prompt is not valid UTF-8/.test(bad.detail));
    assert.ok(!parsePrompt(Buffer.from([0xed, 0xa0, 0x80])).ok, 'UTF-8 encoded surrogate');
    assert.equal(parsePrompt(Buffer.from(' \t ')).ok, false);
    assert.equal(parsePrompt(Buffer.from('a\u0007b')).ok, false);
    assert.equal(parsePrompt(Buffer.from('{"text":"x"}')).ok, false);
    const long = parsePrompt(Buffer.alloc(2000, 0x61));
    assert.ok(!long.ok && long.reason === 'too_large');
    assert.equal(parsePrompt(Buffer.alloc(20, 0x61), 10).ok, false);
  });
});
