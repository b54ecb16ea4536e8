/**
 * The R1 converter (src/model/convert/): the committed GGUF was made by `bitmar-node convert` from the
 * reference's pytorch_model.bin; converting the same weights from safetensors (in TypeScript, no
 * Python) must give the same bytes. Wrong key sets, other BitMar flavours, bad shapes and corrupt
 * GGUF files fail with messages that say what is wrong. The pickle path runs when /usr/bin/python3
 * has PyTorch (skipped with a message otherwise).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBitmarError } from '../../../src/errors.js';
import { convertCheckpointFile, parseSafetensors, ternarize, writeSafetensors, type StTensor, type StTensorInput } from '../../../src/model/convert/index.js';
import { GgufReader } from '../../../src/model/gguf/reader.js';
import { tsKernels } from '../../../src/model/kernels-ts.js';
import { R1Engine } from '../../../src/model/r1/engine.js';
import { FIXTURE_DIR, fx } from './fixture.js';

const ST = join(FIXTURE_DIR, fx.safetensors);
const GGUF = join(FIXTURE_DIR, fx.gguf);
const NAME = 'bitmar-r1-tiny-random';
const tmp = mkdtempSync(join(tmpdir(), 'bitmar-r1-convert-'));

/** The fixture's tensors, edited, as a new safetensors file (with the fixture's config.json beside it). */
function variant(file: string, edit: (t: StTensorInput[]) => StTensorInput[], metadata?: Record<string, string>): string {
  const st = parseSafetensors(readFileSync(ST));
  const list: StTensorInput[] = [...st.tensors.values()].map((t: StTensor) => ({
    name: t.name,
    dtype: t.dtype as 'F32' | 'I64',
    shape: t.shape,
    data: new Uint8Array(t.bytes),
  }));
  const path = join(tmp, file);
  writeFileSync(path, writeSafetensors(edit(list), metadata));
  writeFileSync(join(tmp, 'config.json'), readFileSync(join(FIXTURE_DIR, 'config.json')));
  return path;
}

async function rejects(p: Promise<unknown>, code: string, ...parts: (string | RegExp)[]): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(isBitmarError(e), `not a BitmarError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const part of parts) assert.match(e.message, typeof part === 'string' ? new RegExp(part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : part);
    return e.message;
  }
  assert.fail(`expected ${code}`);
}

function hasTorch(): boolean {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
  return r.status === 0;
}

describe('bitmar-r1 converter', function () {
  this.timeout(120_000);

  it('safetensors → the same GGUF bytes as the fixture converted from pytorch_model.bin', async () => {
    const out = join(tmp, 'from-st.gguf');
    const r = await convertCheckpointFile(ST, { out, name: NAME });
    assert.equal(r.checkpoint.format, 'safetensors');
    assert.equal(r.stats.bitLinears, 51);
    assert.deepEqual(readFileSync(out), readFileSync(GGUF));
    assert.ok(r.notes.some((n) => n.includes('first 511 tokens')), 'the vocabulary trimming is reported');
  });

  it('the GGUF layout: architecture, hyperparameters, gpt2 tokenizer, I8 codes + F32 scales, dropped tensors', () => {
    const g = GgufReader.open(GGUF);
    assert.equal(g.getString('general.architecture'), 'bitmar-r1');
    assert.equal(g.getUint('bitmar-r1.embedding_length'), 32);
    assert.equal(g.getUint('bitmar-r1.memory.slot_count'), 8);
    assert.equal(g.getUint('bitmar-r1.encoder.head_count'), 4);
    assert.equal(g.getString('tokenizer.ggml.model'), 'gpt2');
    assert.equal(g.getStringArray('tokenizer.ggml.tokens').length, 512);
    assert.equal(g.tensorInfo('text_decoder.lm_head.weight').type, 'I8');
    assert.deepEqual(g.tensorInfo('text_decoder.lm_head.weight').dims, [8, 512]);
    assert.deepEqual(g.tensorInfo('vision_encoder.layers.0.weight').dims, [192, 16]);
    assert.deepEqual(g.tensorInfo('memory.memory').dims, [32, 8]);
    assert.equal(g.tensors.has('text_decoder.token_embedding.weight'), false);
    assert.equal(g.tensors.has('text_decoder.causal_mask'), false);
    assert.equal(g.tensors.has('text_decoder.lm_head.bias'), false);
    assert.equal(g.tensors.has('fusion.text_proj.weight_scale'), false);
  });

  it('accepts weight_scale/input_scale of shape [] and checkpoints without the dropped tensors', async () => {
    const path = variant('scalar-scales.safetensors', (ts) =>
      ts
        .filter((t) => t.name !== 'text_decoder.causal_mask' && t.name !== 'text_decoder.token_embedding.weight')
        .map((t) => (t.name.endsWith('_scale') ? { ...t, shape: [] } : t)),
    );
    const out = join(tmp, 'scalar.gguf');
    await convertCheckpointFile(path, { out, name: NAME });
    assert.deepEqual(readFileSync(out), readFileSync(GGUF));
  });

  it('refuses wrong keys, listing the unexpected and the missing ones', async () => {
    const path = variant('wrong-keys.safetensors', (ts) => [
      ...ts.map((t) => (t.name === 'fusion.text_proj.bias' ? { ...t, name: 'fusion.txt_proj.bias' } : t)).filter((t) => t.name !== 'memory.memory_std'),
      { name: 'extra.head.weight', dtype: 'F32', shape: [1], data: new Float32Array(1) },
    ]);
    const msg = await rejects(convertCheckpointFile(path, { out: join(tmp, 'x.gguf') }), 'BITMAR_ERR_MODEL_CHECKPOINT_KEYS', 'unexpected keys (2)', 'fusion.txt_proj.bias', 'extra.head.weight', 'missing keys (2)', 'fusion.text_proj.bias', 'memory.memory_std');
    assert.doesNotMatch(msg, /causal_mask/);
  });

  it('names a common prefix, and refuses the July-2025 and FIBER flavours by name', async () => {
    const prefixed = variant('prefixed.safetensors', (ts) => ts.map((t) => ({ ...t, name: `module.${t.name}` })));
    await rejects(convertCheckpointFile(prefixed), 'BITMAR_ERR_MODEL_CHECKPOINT_KEYS', 'Every key starts with "module."');
    const july = variant('july.safetensors', (ts) => [
      ...ts.filter((t) => !t.name.startsWith('vision_to_episode') && !t.name.startsWith('memory.consolidation') && t.name !== 'memory.attention_temperature'),
      { name: 'memory.query_net.weight', dtype: 'F32', shape: [1], data: new Float32Array(1) },
    ]);
    await rejects(convertCheckpointFile(july), 'BITMAR_ERR_MODEL_ARCH', 'July-2025');
    const fiber = variant('fiber.safetensors', (ts) => [...ts, { name: 'enhanced_episodic_memory.memory', dtype: 'F32', shape: [1], data: new Float32Array(1) }]);
    await rejects(convertCheckpointFile(fiber), 'BITMAR_ERR_MODEL_ARCH', 'FIBER');
  });

  it('refuses a tensor whose shape does not fit, naming it', async () => {
    const path = variant('bad-shape.safetensors', (ts) => ts.map((t) => (t.name === 'fusion.output_proj.bias' ? { ...t, shape: [31], data: new Float32Array(31) } : t)));
    await rejects(convertCheckpointFile(path), 'BITMAR_ERR_MODEL_MISMATCH', 'fusion.output_proj.bias: [31], expected [32]');
  });

  it('takes head counts from the training config (safetensors metadata) or --heads', async () => {
    const path = variant('heads.safetensors', (ts) => ts, { 'bitmar.training_config': JSON.stringify({ model: { text_encoder_heads: 2, text_decoder_heads: 8, fusion_num_heads: 2 } }) });
    const out = join(tmp, 'heads.gguf');
    const r = await convertCheckpointFile(path, { out });
    assert.deepEqual([r.hparams.encoderHeads, r.hparams.decoderHeads, r.hparams.fusionHeads], [2, 8, 2]);
    const e = R1Engine.fromReader(GgufReader.open(out), tsKernels);
    assert.equal(e.config.decoderHeadDim, 4);
    const r2 = await convertCheckpointFile(path, { out, heads: 1 });
    assert.equal(r2.hparams.decoderHeads, 1);
  });

  it('ternarize: fp64 mean|W|, fp32 W/s against fp32(2/3), t2-row-v1 codes with zero padding', () => {
    const w = Float32Array.of(0.9, -0.1, -2, 0.5, 0.05, 3);
    const { codes, scale, zeros } = ternarize(w, 2, 3);
    assert.equal(scale, Math.fround((0.9 + 0.1 + 2 + 0.5 + 0.05 + 3) / 6));
    // row 0: 0.9/s=0.82 → +1, −0.1 → 0, −2 → −1; row 1: 0.5/s=0.46 → 0, 0.05 → 0, 3 → +1
    assert.deepEqual(Array.from(codes), [2 | (1 << 2) | (0 << 4) | (1 << 6), 1 | (1 << 2) | (2 << 4) | (1 << 6)]);
    assert.equal(zeros, 3);
  });

  it('pickle checkpoints (pytorch_model.bin with [] scales, a training .pt) through /usr/bin/python3', async function () {
    if (!hasTorch()) {
      console.log('      skipped: /usr/bin/python3 has no PyTorch (Debian: apt-get install python3-torch)');
      this.skip();
    }
    const ref = join(FIXTURE_DIR, '..', '..', '..', 'tools', 'reference', 'r1_reference.py');
    const bin = join(tmp, 'pytorch_model.bin');
    const pt = join(tmp, 'checkpoint_epoch_3.pt');
    for (const args of [['--out', bin, '--scalar-scales'], ['--out', pt, '--training']]) {
      const r = spawnSync('nice', ['-n', '15', '/usr/bin/python3', ref, 'save-checkpoint', '--safetensors', ST, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    }
    writeFileSync(join(tmp, 'config.json'), readFileSync(join(FIXTURE_DIR, 'config.json')));
    for (const path of [bin, pt]) {
      const out = join(tmp, 'pickle.gguf');
      const r = await convertCheckpointFile(path, { out, name: NAME });
      assert.equal(r.checkpoint.format, 'pickle');
      assert.deepEqual(readFileSync(out), readFileSync(GGUF), path);
    }
    // a pickle that would run code is refused (the unpickler builds only tensors, containers, numbers)
    const evil = join(tmp, 'evil.bin');
    const mk = `import torch, os\nclass E:\n    def __reduce__(self): return (os.system, ('true',))\ntorch.save({'a': E()}, ${JSON.stringify(evil)})`;
    assert.equal(spawnSync('/usr/bin/python3', ['-c', mk]).status, 0);
    await rejects(convertCheckpointFile(evil), 'BITMAR_ERR_MODEL_FORMAT', /refusing to build (posix|os)\.system/, '--unsafe-pickle');
  });

  it('a pickle without a usable Python says what to install', async () => {
    const bin = join(tmp, 'fake.bin');
    writeFileSync(bin, Uint8Array.of(0x50, 0x4b, 3, 4, 0, 0, 0, 0));
    await rejects(convertCheckpointFile(bin, { python: join(tmp, 'no-python') }), 'BITMAR_ERR_MODEL_FORMAT', 'python3-torch', 'does not exist');
    writeFileSync(join(tmp, 'junk.bin'), 'hello');
    await rejects(convertCheckpointFile(join(tmp, 'junk.bin')), 'BITMAR_ERR_MODEL_FORMAT', 'not a PyTorch checkpoint');
  });
});

describe('bitmar-r1 GGUF validation', () => {
  const good = readFileSync(GGUF);
  const load = (bytes: Uint8Array): R1Engine => R1Engine.fromReader(GgufReader.fromBytes(bytes, 'bad.gguf'), tsKernels);
  const throwsCode = (f: () => unknown, code: string, re: RegExp): void => {
    assert.throws(f, (e: unknown) => isBitmarError(e) && e.code === code && re.test(e.message));
  };

  it('a truncated file', () => {
    throwsCode(() => load(good.subarray(0, good.length - 1000)), 'BITMAR_ERR_MODEL_FORMAT', /truncated/);
  });

  it('a flipped magic byte', () => {
    const b = Uint8Array.from(good);
    b[0] = 0x48;
    throwsCode(() => load(b), 'BITMAR_ERR_MODEL_FORMAT', /bad magic/);
  });

  it('an invalid ternary code names the tensor', () => {
    const t = GgufReader.fromBytes(good).tensorInfo('fusion.output_proj.weight');
    const b = Uint8Array.from(good);
    b[t.offset] = 0xff; // code 3
    throwsCode(() => load(b), 'BITMAR_ERR_MODEL_FORMAT', /fusion\.output_proj\.weight.*code 3/);
  });

  it('a tensor of the wrong type or shape, and another architecture', () => {
    throwsCode(() => R1Engine.fromReader(GgufReader.open(join(FIXTURE_DIR, '..', 'stream', 'random-tiny.gguf')), tsKernels), 'BITMAR_ERR_MODEL_ARCH', /bitmar-r1/);
    const g = GgufReader.fromBytes(good);
    const info = g.tensorInfo('memory.memory_std');
    // the tensor-info record of memory.memory_std: name, n_dims, ne… — change ne[0] 32 → 31
    const name = new TextEncoder().encode('memory.memory_std');
    const b = Uint8Array.from(good);
    const at = Buffer.from(b).indexOf(Buffer.from(name));
    const dv = new DataView(b.buffer);
    const ne0 = at + name.length + 4;
    assert.equal(Number(dv.getBigUint64(ne0, true)), info.dims[0]);
    dv.setBigUint64(ne0, 31n, true);
    throwsCode(() => load(b), 'BITMAR_ERR_MODEL_MISMATCH', /memory\.memory_std.*\[32\].*\[31\]/);
  });
});
