/**
 * One MQTT prompt message → prompt text. The payload is UTF-8 text, or JSON `{"prompt": "..."}`.
 * Invalid UTF-8 (checked strictly: TextDecoder fatal), empty and too long prompts are refused.
 */
import { BitmarError } from '../../errors.js';
import type { DropReason } from '../../types.js';

export type PromptResult = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly reason: DropReason; readonly detail: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

function fail(reason: DropReason, message: string): PromptResult {
  return { ok: false, reason, detail: `${new BitmarError('BITMAR_ERR_PROMPT_INVALID', message).code}: ${message}` };
}

/** Never throws. `maxBytes` bounds the payload (default 1024). */
export function parsePrompt(payload: Uint8Array, maxBytes = 1024): PromptResult {
  if (payload.byteLength > maxBytes) return fail('too_large', `prompt of ${payload.byteLength} bytes is longer than ${maxBytes}`);
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return fail('invalid_input', 'prompt is not valid UTF-8');
  }
  if (text.startsWith('{')) {
    try {
      const obj: unknown = JSON.parse(text);
      if (obj !== null && typeof obj === 'object' && 'prompt' in obj && typeof obj.prompt === 'string') text = obj.prompt;
      else return fail('invalid_input', 'JSON prompt must be {"prompt": "<text>"}');
    } catch {
      // not JSON: a prompt that starts with a brace
    }
  }
  text = text.trim();
  // Control characters other than tab/newline have no place in a prompt (and break terminals).
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text)) return fail('invalid_input', 'prompt contains control characters');
  if (text.length === 0) return fail('invalid_input', 'prompt is empty');
  return { ok: true, text };
}
