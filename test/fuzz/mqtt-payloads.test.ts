/**
 * Fuzz: MQTT payloads through the real inbound path — an MqttTransport (not connected) hands each
 * message to the MQTT source (src/sources/mqtt/mqtt-source.ts) exactly as it does for a broker's
 * PUBLISH: `image` (JPEG/PNG, or raw pixels with MQTT 5 user properties), `image/raw` (3.1.1 JSON
 * header line + pixels), `prompt`, and `request/<name>` (describe, recall, anything else).
 * Contract: every message becomes exactly one Frame or Prompt, or is counted as a drop with a
 * DropReason (whose detail names a BITMAR_ERR_* code when it comes from a parser), or — requests —
 * is answered; the transport never sees a handler throw.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import jpeg from 'jpeg-js';
import type { IPublishPacket } from 'mqtt';
import { silentLogger } from '../../src/sinks/mqtt/logger.js';
import { MqttTransport } from '../../src/sinks/mqtt/transport.js';
import { SUPPORTED_ENCODINGS } from '../../src/ros2/image-decode.js';
import { createMqttSource } from '../../src/sources/mqtt/mqtt-source.js';
import { encodePng } from '../../src/sources/image/decode.js';
import type { DropEvent, Frame, Prompt } from '../../src/types.js';
import { caption } from '../mqtt/helpers/captions.js';
import { bytesFrom, DROP_REASONS, FUZZ_RUNS, fuzzParams, report, Tally, watchMemory } from './fuzz-kit.js';

const PATTERN = Uint8Array.from({ length: 8192 }, (_, i) => (i * 31) & 0xff);
const JPEG = new Uint8Array(jpeg.encode({ width: 16, height: 12, data: Buffer.from(PATTERN.subarray(0, 16 * 12 * 4)) }, 75).data);
const PNG = encodePng({ width: 6, height: 5, data: PATTERN.subarray(0, 90) });
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A message as the broker would deliver it. */
interface Inbound {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly userProperties?: Record<string, string>;
  readonly responseTopic?: string;
  readonly correlationData?: Uint8Array;
}

/** A bitmar.response.v1 as published: a result or an error with a code. */
interface Answer {
  readonly error?: { readonly code: string; readonly message: string };
}

/** The transport's private entry point for a received PUBLISH (transport.ts `onMessage`). */
type Deliver = (topic: string, payload: Buffer, packet: IPublishPacket) => void;

function harness() {
  const transport = new MqttTransport({ url: 'mqtt://127.0.0.1:1', nodeId: 'fuzz', logger: silentLogger, maxPayloadBytes: 64 * 1024 });
  const answers: Answer[] = [];
  const publish = transport.publish.bind(transport);
  transport.publish = (...args: Parameters<MqttTransport['publish']>) => {
    const body = args[1];
    const json = typeof body === 'string' || Buffer.isBuffer(body) ? (JSON.parse(body.toString()) as Answer) : (body as unknown as Answer);
    answers.push(json);
    return publish(...args);
  };
  let clockMs = 0;
  let handlerCalls = 0;
  const source = createMqttSource(transport, {
    nowMs: () => clockMs,
    handlers: {
      describe: (req) => {
        handlerCalls++;
        return Promise.resolve(caption(1, { frame: { id: req.frame?.id ?? 0, source: 'fuzz', stampNs: 1n, frameId: '' } }));
      },
      recall: () => {
        handlerCalls++;
        return Promise.resolve([]);
      },
    },
  });
  const frames: Frame[] = [];
  const prompts: Prompt[] = [];
  const drops: DropEvent[] = [];
  source.frames$.subscribe((f) => frames.push(f));
  source.prompts$.subscribe((p) => prompts.push(p));
  source.drops$.subscribe((d) => drops.push(d));
  const deliver = (transport as unknown as { onMessage: Deliver }).onMessage.bind(transport);
  return {
    transport,
    frames,
    prompts,
    drops,
    answers,
    counts: () => ({ frames: frames.length, prompts: prompts.length, drops: drops.length, responses: answers.length, handlerCalls }),
    /** Delivers one message; `advanceMs` moves the rate limiter's clock first. */
    send(m: Inbound, advanceMs: number): void {
      clockMs += advanceMs;
      const properties = {
        ...(m.userProperties !== undefined ? { userProperties: m.userProperties } : {}),
        ...(m.responseTopic !== undefined ? { responseTopic: m.responseTopic } : {}),
        ...(m.correlationData !== undefined ? { correlationData: Buffer.from(m.correlationData) } : {}),
      };
      const packet = { cmd: 'publish', topic: m.topic, qos: 0, dup: false, retain: false, payload: Buffer.alloc(0), properties } as IPublishPacket;
      deliver(m.topic, Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength), packet);
    },
    close(): void {
      source.close();
      transport.destroy();
    },
  };
}

const EDGE = ['0', '1', '2', '-1', '', 'NaN', '1e3', '0x10', '8192', '8193', '65535', '4294967295', '99999999999', ' 4', '4.5'];
const num = fc.oneof(fc.nat({ max: 40 }).map(String), fc.constantFrom(...EDGE));
const encoding = fc.oneof(fc.constantFrom(...SUPPORTED_ENCODINGS), fc.constantFrom('RGB8', 'bayer_rggb8', '', 'jpeg'), fc.string({ maxLength: 8 }));
const rawProps = fc.record(
  { encoding, width: num, height: num, step: num, is_bigendian: fc.constantFrom('0', '1', 'true', 'yes'), stampNs: fc.constantFrom('1', '123456789012345678901', 'x'), frameId: fc.string({ maxLength: 8 }) },
  { requiredKeys: ['encoding'] },
);
const pixels = fc.nat({ max: 4096 }).map((n) => PATTERN.subarray(0, n));
const responseTopic = fc.oneof(
  { arbitrary: fc.constant('reply/1'), weight: 6 },
  { arbitrary: fc.constant(undefined), weight: 2 },
  { arbitrary: fc.oneof(fc.constantFrom('reply/+', 'reply/#', ''), fc.string({ maxLength: 12 })), weight: 2 },
);

/** `image`: compressed files mutated, or raw pixels with user properties. */
const imageMessages: fc.Arbitrary<Inbound> = fc.oneof(
  { arbitrary: bytesFrom([JPEG, PNG]).map(({ bytes }) => ({ topic: 'bitmar/fuzz/image', payload: bytes })), weight: 5 },
  { arbitrary: fc.tuple(rawProps, pixels).map(([userProperties, payload]) => ({ topic: 'bitmar/fuzz/image', payload, userProperties })), weight: 4 },
  // worker mode shape: another camera's id in the topic is not subscribed here (unknown_topic)
  { arbitrary: bytesFrom([JPEG]).map(({ bytes }) => ({ topic: 'bitmar/cam7/image', payload: bytes })), weight: 1 },
);

/** `image/raw`: a JSON header line (valid, mutated, or not JSON) then pixels. */
const rawEnvelope: fc.Arbitrary<Inbound> = fc
  .tuple(
    fc.oneof(
      rawProps.map((p) => JSON.stringify(p)),
      fc.record({ encoding, width: fc.oneof(fc.nat({ max: 20 }), fc.double()), height: fc.nat({ max: 20 }) }).map((p) => JSON.stringify(p)),
      fc.constantFrom('[]', 'null', '"rgb8"', '{', '{"encoding":"rgb8","width":2,"height":2}'),
      fc.string({ maxLength: 40 }),
    ),
    fc.oneof({ arbitrary: fc.constant(true), weight: 9 }, { arbitrary: fc.constant(false), weight: 1 }),
    pixels,
    fc.oneof({ arbitrary: fc.constant([]), weight: 3 }, { arbitrary: fc.array(fc.nat(), { minLength: 1, maxLength: 2 }), weight: 1 }),
  )
  .map(([head, newline, px, flips]) => {
    const h = utf8(head);
    const payload = new Uint8Array(h.length + 1 + px.length);
    payload.set(h);
    if (newline) payload[h.length] = 0x0a;
    payload.set(px, h.length + 1);
    for (const f of flips) if (payload.length > 0) payload[f % payload.length]! ^= 0x20;
    return { topic: 'bitmar/fuzz/image/raw', payload };
  });

/** `prompt`: text, JSON, bad UTF-8, control characters, too long. */
const promptMessages: fc.Arbitrary<Inbound> = fc
  .oneof(
    fc.string({ unit: 'binary', maxLength: 80 }).map(utf8),
    fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => utf8(JSON.stringify({ prompt: s }))),
    fc.constantFrom('{"prompt": 5}', '{"prompt"', '{}', '   ', '\u0007bell', 'a\u0000b', '{"prompt":"where is the red circle"}').map(utf8),
    fc.uint8Array({ maxLength: 64 }),
    fc.nat({ max: 70_000 }).map((n) => utf8('long '.repeat(n >> 2))),
    bytesFrom([utf8('describe the scene'), utf8('was siehst du? 🟥🔵')], { randomMaxBytes: 32 }).map((x) => x.bytes),
  )
  .map((payload) => ({ topic: 'bitmar/fuzz/prompt', payload }));

/** `request/<name>`: JSON bodies (valid, mutated, wrong types), images for describe, reply topics. */
const requestMessages: fc.Arbitrary<Inbound> = fc
  .record({
    name: fc.oneof({ arbitrary: fc.constantFrom('describe', 'recall'), weight: 8 }, { arbitrary: fc.constantFrom('forget', ''), weight: 1 }, { arbitrary: fc.string({ maxLength: 6 }).filter((s) => !/[/+#]/.test(s)), weight: 1 }),
    body: fc.oneof(
      fc.record({ prompt: fc.oneof(fc.string({ maxLength: 20 }), fc.integer()) }, { requiredKeys: [] }).map((o) => utf8(JSON.stringify(o))),
      fc.record({ query: fc.oneof(fc.string({ maxLength: 20 }), fc.constant(null)), k: fc.oneof(fc.integer({ min: -5, max: 200 }), fc.double(), fc.string()) }, { requiredKeys: ['query'] }).map((o) => utf8(JSON.stringify(o))),
      fc.record({ responseTopic: fc.string({ maxLength: 10 }), correlationId: fc.oneof(fc.string({ maxLength: 10 }), fc.integer()), query: fc.string({ maxLength: 10 }) }, { requiredKeys: [] }).map((o) => utf8(JSON.stringify(o))),
      fc.constantFrom('', '[]', 'null', '{', '"x"', '{"query":"red circle","k":3,"responseTopic":"reply/9"}').map(utf8),
      bytesFrom([JPEG, PNG, utf8('{"query":"red circle","k":3}')], { randomMaxBytes: 48 }).map((x) => x.bytes),
    ),
    responseTopic,
    correlationData: fc.option(fc.uint8Array({ maxLength: 8 }), { nil: undefined }),
  })
  .map((r) => ({
    topic: `bitmar/fuzz/request/${r.name}`,
    payload: r.body,
    ...(r.responseTopic !== undefined ? { responseTopic: r.responseTopic } : {}),
    ...(r.correlationData !== undefined ? { correlationData: r.correlationData } : {}),
  }));

/** Advance the rate limiter 1 s (always a token) — or not at all, so bursts hit `rate_limited`. */
const advance = fc.oneof({ arbitrary: fc.constant(1000), weight: 9 }, { arbitrary: fc.constant(0), weight: 1 });

/**
 * Checks a drop and returns its tally key. Limits and routing refusals (rate_limited, unknown_topic,
 * the transport's size limit) are their own code; a parser refusal must name its BitmarError; a
 * refused request is answered with an error code unless it gave nowhere to answer.
 */
function checkDrop(d: DropEvent, answers: readonly Answer[]): string {
  assert.equal(d.stage, 'mqtt');
  assert.ok(DROP_REASONS.has(d.reason), `unknown drop reason ${d.reason}`);
  const detail = d.detail ?? '';
  const code = /BITMAR_ERR_[A-Z0-9_]+/.exec(detail);
  if (code !== null) return `${d.reason}/${code[0]}`;
  if (d.reason === 'rate_limited' || d.reason === 'unknown_topic' || /bytes > maxPayloadBytes/.test(detail)) return d.reason;
  if (detail.startsWith('bitmar/fuzz/request/')) {
    if (/request without a response topic/.test(detail)) return `${d.reason}/(no reply topic)`;
    const answer = answers[answers.length - 1];
    assert.ok(answer?.error !== undefined && answer.error.code.length > 0, `refused request not answered with an error code: ${detail}`);
    return `${d.reason}/answer:${answer.error.code}`;
  }
  assert.fail(`drop without an error code: ${d.reason}: ${detail}`);
}

function frameOk(f: Frame): void {
  assert.ok(f.width >= 1 && f.height >= 1);
  assert.equal(f.data.length, f.width * f.height * 3);
  assert.equal(typeof f.stampNs, 'bigint');
}

describe('fuzz: MQTT payloads → transport → MQTT source', function () {
  this.timeout(120_000);

  const cases: [string, fc.Arbitrary<Inbound>, boolean][] = [
    ['image + image/raw', fc.oneof(imageMessages, rawEnvelope), true],
    ['prompt', promptMessages, true],
    ['request/<name>', requestMessages, false],
  ];
  for (const [name, messages, exactlyOne] of cases) {
    it(`${name}: exactly one frame, prompt, counted drop or answer per message`, async () => {
      const h = harness();
      const tally = new Tally();
      const mem = watchMemory();
      const t0 = performance.now();
      try {
        await fc.assert(
          fc.asyncProperty(messages, advance, async (m, advanceMs) => {
            const before = h.counts();
            const nDrops = h.drops.length;
            h.send(m, advanceMs);
            const after = h.counts();
            const seen = after.frames - before.frames + (after.prompts - before.prompts) + (after.drops - before.drops);
            if (!exactlyOne) await new Promise((r) => setImmediate(r)); // the handler answers before the next request
            if (exactlyOne) assert.equal(seen, 1, `message on ${m.topic} gave ${seen} outcomes`);
            else assert.ok(seen + (after.responses - before.responses) + (after.handlerCalls - before.handlerCalls) >= 1, `request on ${m.topic} vanished`);
            if (after.frames > before.frames) frameOk(h.frames[h.frames.length - 1]!);
            if (after.prompts > before.prompts) assert.ok(h.prompts[h.prompts.length - 1]!.text.length > 0);
            const newDrops = h.drops.slice(nDrops);
            if (newDrops.length > 0) for (const d of newDrops) tally.reject(checkDrop(d, h.answers));
            else tally.accept();
            if (tally.total % 256 === 0) {
              mem.sample();
              h.frames.length = 0; // the pipeline would consume them
              h.prompts.length = 0;
              h.drops.length = 0;
              h.answers.length = 0;
            }
          }),
          fuzzParams(),
        );
        await new Promise((r) => setImmediate(r)); // let answered requests settle
        const stats = h.transport.stats();
        assert.equal(stats.dropped.handler_error ?? 0, 0, 'a source handler threw');
        report(`MQTT ${name}`, tally, mem.check(), performance.now() - t0);
        assert.ok(tally.total >= FUZZ_RUNS);
      } finally {
        h.close();
      }
    });
  }
});
