/**
 * docs/mqtt.md prints every payload schema of src/sinks/mqtt/schemas.ts verbatim, under a
 * `<!-- schema: <id> -->` marker. BITMAR_UPDATE_DOCS=1 rewrites the blocks from the code.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { ALL_SCHEMAS } from '../../../src/sinks/mqtt/schemas.js';

const DOC = new URL('../../../docs/mqtt.md', import.meta.url);

function block(id: string, body: string): string {
  return `<!-- schema: ${id} -->\n\`\`\`json\n${body}\`\`\``;
}

describe('docs/mqtt.md', () => {
  it('shows every MQTT payload schema exactly as the code defines it', () => {
    let text = readFileSync(DOC, 'utf8');
    if (process.env.BITMAR_UPDATE_DOCS === '1') {
      for (const s of ALL_SCHEMAS) {
        const re = new RegExp(`<!-- schema: ${s.$id!.replace(/\./g, '\\.')} -->\\n\`\`\`json\\n[\\s\\S]*?\`\`\``);
        text = text.replace(re, block(s.$id!, `${JSON.stringify(s, null, 2)}\n`));
      }
      writeFileSync(DOC, text);
    }
    for (const s of ALL_SCHEMAS) {
      assert.ok(text.includes(block(s.$id!, `${JSON.stringify(s, null, 2)}\n`)), `docs/mqtt.md: schema block for ${s.$id} is missing or stale (BITMAR_UPDATE_DOCS=1 to regenerate)`);
    }
  });

  it('shows a device subscribing with mosquitto_sub and sending a JPEG with mosquitto_pub', () => {
    const text = readFileSync(DOC, 'utf8');
    assert.ok(text.includes("mosquitto_sub -h 127.0.0.1 -t 'bitmar/+/caption' -v"));
    assert.ok(text.includes('mosquitto_pub -h 127.0.0.1 -t bitmar/<id>/image -f frame.jpg'));
  });
});
