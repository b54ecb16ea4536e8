/**
 * `bitmar-node memory …`: inspect and manage the episodic memory on disk (docs/memory.md).
 *   memory stats [--json]            slots, used, archive size, path, policy, counters
 *   memory query <text…> [--k N] [--json] [--image FILE] [--model FILE]
 *   memory export <file>             bitmar-memory JSON lines
 *   memory import <file> [--replace] a bitmar-memory export or an R1 memory JSON
 *   memory clear [--yes] [--keep-archive]
 * Each takes --state-dir DIR (default $BITMAR_STATE_DIR, else the node's state directory) or --db FILE.
 * stats, query and export open the database read-only, so they are safe while the node runs; import and
 * clear change it, so stop the node first (a running node would overwrite them at its next sync).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { BitmarError, isBitmarError } from '../errors.js';
import { exportMemory, importMemory, readImportHeader } from '../memory/export-format.js';
import { SqliteEpisodicStore } from '../memory/sqlite-store.js';
import { MEMORY_DB_FILE, type EpisodicStore, type RecallHit } from '../memory/store.js';
import { defaultModelPath, resolveStateDir } from '../paths.js';

/** A decoded RGB8 image (what the model's image encoder takes). */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** The text and image embedders `memory query` needs; the CLI loads the model lazily when they are absent. */
export interface Embedders {
  embedText(text: string): Promise<Float32Array>;
  embedImage?(image: RgbImage): Promise<Float32Array>;
  close?(): Promise<void>;
}

export interface MemoryCommandDeps {
  /** Replaces the model (tests, or a caller that already holds a worker). */
  readonly embedders?: (modelPath: string | undefined) => Promise<Embedders>;
  readonly out?: NodeJS.WritableStream;
  readonly err?: NodeJS.WritableStream;
  readonly env?: NodeJS.ProcessEnv;
  /** The state directory when neither --state-dir nor $BITMAR_STATE_DIR is given (the lead's config default). */
  readonly defaultStateDir?: () => string;
  /** Receives the exit code (default: sets process.exitCode). */
  readonly setExitCode?: (code: number) => void;
}

interface WhereOpts {
  stateDir?: string;
  db?: string;
}

/** The database a memory command works on: --db, else <state dir>/memory.sqlite. */
export function memoryDbPath(opts: WhereOpts, deps: Pick<MemoryCommandDeps, 'env' | 'defaultStateDir'> = {}): string {
  if (opts.db) return resolve(opts.db);
  const env = deps.env ?? process.env;
  const dir = opts.stateDir || env['BITMAR_STATE_DIR'] || (deps.defaultStateDir ? deps.defaultStateDir() : resolveStateDir('', env));
  return resolve(join(dir, MEMORY_DB_FILE));
}

// ---- the commands as functions (each returns the exit code) ----------------------------------------------

/** `memory stats`. A missing database is reported (exists: false), not created. */
export function memoryStats(dbPath: string, json: boolean, out: NodeJS.WritableStream): number {
  if (!existsSync(dbPath)) {
    const empty = { path: dbPath, exists: false, slots: 0, used: 0, archiveSize: 0 };
    out.write(json ? JSON.stringify(empty) + '\n' : `no memory store at ${dbPath} (the node creates it on its first run)\n`);
    return 0;
  }
  withStore(dbPath, true, (store) => {
    const s = { ...store.stats(), exists: true };
    if (json) {
      out.write(JSON.stringify(s) + '\n');
      return;
    }
    out.write(
      [
        `path         ${s.path}`,
        `slots        ${s.used} / ${s.slots} used (width ${s.width})`,
        `archive      ${s.archiveSize} / ${s.archiveCap} (${s.archiveDropped} oldest dropped)`,
        `policy       ${JSON.stringify(s.policyConfig)}`,
        `evictions    ${s.evictions} (expired ${s.expired}), merges ${s.merges}, discarded ${s.discarded}`,
        `rejected     ${s.rejected} writes, ${s.posesDropped} poses`,
        `episodes     ${s.offered} written`,
      ].join('\n') + '\n',
    );
  });
  return 0;
}

export interface QueryCommandOptions {
  readonly text?: string;
  readonly imageFile?: string;
  readonly k: number;
  readonly json: boolean;
  readonly liveOnly?: boolean;
  readonly modelPath?: string;
}

/**
 * `memory query`: embeds the text (or image) with the model and prints the top-k episodes. `embedders`
 * is injected (tests) or loaded lazily from the model module.
 */
export async function memoryQuery(
  dbPath: string,
  opts: QueryCommandOptions,
  embedders: (modelPath: string | undefined) => Promise<Embedders>,
  out: NodeJS.WritableStream,
): Promise<RecallHit[]> {
  if (!opts.text && !opts.imageFile) throw new BitmarError('BITMAR_ERR_PROMPT_INVALID', 'memory query needs text or --image FILE');
  if (!existsSync(dbPath)) throw new BitmarError('BITMAR_ERR_MEMORY_OPEN', `no memory store at ${dbPath}`);
  const model = await embedders(opts.modelPath);
  let vector: Float32Array;
  try {
    if (opts.imageFile) {
      if (!model.embedImage) throw new BitmarError('BITMAR_ERR_MODEL_ARCH', 'this model cannot embed images for recall');
      vector = await model.embedImage(await readImage(opts.imageFile));
    } else {
      vector = await model.embedText(opts.text!);
    }
  } finally {
    await model.close?.();
  }
  const hits = withStore(dbPath, true, (store) => store.query(vector, opts.k, { includeArchive: opts.liveOnly !== true }));
  if (opts.json) {
    out.write(JSON.stringify(hits.map(hitJson)) + '\n');
  } else if (hits.length === 0) {
    out.write('the memory is empty\n');
  } else {
    for (const h of hits) out.write(hitLine(h) + '\n');
  }
  return hits;
}

/** `memory export`. */
export function memoryExport(dbPath: string, file: string, out: NodeJS.WritableStream): number {
  if (!existsSync(dbPath)) throw new BitmarError('BITMAR_ERR_MEMORY_OPEN', `no memory store at ${dbPath}`);
  const s = withStore(dbPath, true, (store) => exportMemory(store, file));
  out.write(`exported ${s.slots} live and ${s.archive} archived episodes to ${file} (${s.bytes} bytes)\n`);
  return 0;
}

/** `memory import` (creates the store with the file's width when there is none). */
export function memoryImport(dbPath: string, file: string, replace: boolean, out: NodeJS.WritableStream): number {
  const header = readImportHeader(file);
  const fresh = !existsSync(dbPath);
  const s = withStore(dbPath, false, (store) => importMemory(store, file, { replace }), {
    width: header.width,
    ...(fresh ? { slots: Math.max(header.slots, 1) } : {}),
  });
  out.write(`imported ${s.slots} live and ${s.archive} archived episodes (${s.format}) into ${dbPath}\n`);
  return 0;
}

/** `memory clear` (refuses without --yes). */
export function memoryClear(dbPath: string, yes: boolean, keepArchive: boolean, out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  if (!yes) {
    err.write(`bitmar-node memory clear: this deletes every episode in ${dbPath}${keepArchive ? ' (the archive is kept)' : ' and its archive'}; pass --yes to confirm\n`);
    return 1;
  }
  if (!existsSync(dbPath)) {
    out.write(`no memory store at ${dbPath}; nothing to clear\n`);
    return 0;
  }
  const before = withStore(dbPath, false, (store) => {
    const s = store.stats();
    store.clear({ archive: !keepArchive });
    return s;
  });
  out.write(`cleared ${before.used} live${keepArchive ? '' : ` and ${before.archiveSize} archived`} episodes from ${dbPath}\n`);
  return 0;
}

// ---- commander ---------------------------------------------------------------------------------------------

/** Adds `memory stats|query|export|import|clear` to the program. */
export function registerMemoryCommand(program: Command, deps: MemoryCommandDeps = {}): Command {
  const out = deps.out ?? process.stdout;
  const err = deps.err ?? process.stderr;
  const setExit = deps.setExitCode ?? ((code: number) => void (process.exitCode = code));
  const embedders = deps.embedders ?? loadModelEmbedders;
  const where = (c: Command): Command =>
    c
      .option('--state-dir <dir>', 'state directory holding memory.sqlite (default $BITMAR_STATE_DIR, else the node\'s)')
      .option('--db <file>', 'the memory database file itself (overrides --state-dir)');
  const run = (name: string, fn: () => number | Promise<number>): Promise<void> =>
    Promise.resolve()
      .then(fn)
      .then(setExit, (e: unknown) => {
        const why = isBitmarError(e) ? `${e.message} [${e.code}]` : e instanceof Error ? e.message : String(e);
        err.write(`bitmar-node memory ${name}: ${why}\n`);
        setExit(1);
      });
  const dbOf = (o: WhereOpts): string => memoryDbPath(o, deps);

  const memory = program.command('memory').description('inspect and manage the episodic memory (stats, query, export, import, clear)');

  where(memory.command('stats').description('slot count, slots used, archive size, path, policy and counters'))
    .option('--json', 'print one JSON object')
    .action((o: WhereOpts & { json?: boolean }) => run('stats', () => memoryStats(dbOf(o), o.json === true, out)));

  where(memory.command('query').description('recall the episodes closest to a text (or an image), best first'))
    .argument('[text...]', 'what to look for, e.g. "red circle"')
    .option('--k <n>', 'how many episodes', positiveInt('--k'), 5)
    .option('--json', 'print a JSON array')
    .option('--image <file>', 'query with an image (PNG, JPEG, PPM) instead of text')
    .option('--live-only', 'search only the live slots, not the archive')
    .option('--model <file>', 'GGUF model file for the embedding (default: the bundled model)')
    .action((text: string[], o: WhereOpts & { k: number; json?: boolean; image?: string; liveOnly?: boolean; model?: string }) =>
      run('query', async () => {
        const q: QueryCommandOptions = {
          k: o.k,
          json: o.json === true,
          liveOnly: o.liveOnly === true,
          ...(text.length > 0 ? { text: text.join(' ') } : {}),
          ...(o.image !== undefined ? { imageFile: o.image } : {}),
          ...(o.model !== undefined ? { modelPath: o.model } : {}),
        };
        await memoryQuery(dbOf(o), q, embedders, out);
        return 0;
      }),
    );

  where(memory.command('export').description('write every live and archived episode to a bitmar-memory JSON-lines file'))
    .argument('<file>', 'output file')
    .action((file: string, o: WhereOpts) => run('export', () => memoryExport(dbOf(o), file, out)));

  where(memory.command('import').description('add the episodes of a bitmar-memory export or an R1 memory JSON (stop the node first)'))
    .argument('<file>', 'input file')
    .option('--replace', 'clear the memory (and its archive) first')
    .action((file: string, o: WhereOpts & { replace?: boolean }) => run('import', () => memoryImport(dbOf(o), file, o.replace === true, out)));

  where(memory.command('clear').description('delete every episode (stop the node first)'))
    .option('--yes', 'confirm')
    .option('--keep-archive', 'clear only the live slots')
    .action((o: WhereOpts & { yes?: boolean; keepArchive?: boolean }) =>
      run('clear', () => memoryClear(dbOf(o), o.yes === true, o.keepArchive === true, out, err)),
    );
  return memory;
}

// ---- helpers -------------------------------------------------------------------------------------------------

function withStore<T>(dbPath: string, readOnly: boolean, fn: (store: EpisodicStore) => T, create?: { width: number; slots?: number }): T {
  const store = SqliteEpisodicStore.open({ path: dbPath, readOnly, syncIntervalMs: 0, ...(create ?? {}) });
  let result: T;
  try {
    result = fn(store);
  } catch (e) {
    try {
      store.close();
    } catch {
      // the first error is the one to report
    }
    throw e;
  }
  store.close();
  return result;
}

function positiveInt(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be an integer ≥ 1, got "${v}"`);
    return n;
  };
}

function hitJson(h: RecallHit): { [key: string]: unknown } {
  return { ...h, frameStampNs: h.frameStampNs === null ? null : h.frameStampNs.toString() };
}

function hitLine(h: RecallHit): string {
  const where = h.slot !== undefined ? `slot ${h.slot}` : `archive ${h.archiveId}`;
  const when = new Date(h.lastSeenMs).toISOString();
  const pose = h.pose ? `  at (${h.pose.x.toFixed(2)}, ${h.pose.y.toFixed(2)}, ${h.pose.z.toFixed(2)}) ${h.pose.frame}` : '';
  return `${h.score.toFixed(3)}  ${where.padEnd(14)} ${when}  ${h.source || '-'}  "${h.caption}"${pose}`;
}

/** Decodes an image file through the sources' decoder (loaded lazily: only `query --image` needs it). */
async function readImage(file: string): Promise<RgbImage> {
  const bytes = await readFile(file);
  const specifier = '../sources/image/decode.js';
  const mod: unknown = await import(specifier);
  const decode = fnProp(mod, 'decodeImage');
  if (!decode) throw new BitmarError('BITMAR_ERR_IMAGE_DECODE', 'no image decoder in this build');
  const img: unknown = decode(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  if (!isRgbImage(img)) throw new BitmarError('BITMAR_ERR_IMAGE_DECODE', `${file}: the decoder returned no RGB image`);
  return img;
}

/**
 * The model's embedders, loaded on first use: `InferenceWorker.start({modelPath})` from the model module,
 * whose `encodeText(text)` (and `encodeImage(image)`, when present) give the recall vectors (u and e of
 * docs/bitmar-stream.md §3: one shared space).
 */
export async function loadModelEmbedders(modelPath: string | undefined): Promise<Embedders> {
  let Worker: unknown;
  for (const specifier of ['../model/index.js', '../model/inference-worker.js']) {
    try {
      const mod: unknown = await import(specifier);
      Worker = prop(mod, 'InferenceWorker');
      if (Worker !== undefined) break;
    } catch (e) {
      if (!(typeof e === 'object' && e !== null && 'code' in e && e.code === 'ERR_MODULE_NOT_FOUND')) throw e;
    }
  }
  const start = fnProp(Worker, 'start');
  if (!start) throw new BitmarError('BITMAR_ERR_MODEL_NOT_FOUND', 'the model module is not available in this build; cannot embed the query');
  const worker: unknown = await start.call(Worker, { modelPath: modelPath ?? defaultModelPath() });
  const encodeText = fnProp(worker, 'encodeText');
  const encodeImage = fnProp(worker, 'encodeImage');
  const close = fnProp(worker, 'close');
  if (!encodeText) throw new BitmarError('BITMAR_ERR_MODEL_ARCH', 'the model worker has no encodeText');
  const embedders: Embedders = {
    embedText: async (text) => embeddingOf(await encodeText.call(worker, text)),
    close: async () => {
      if (close) await close.call(worker);
    },
  };
  if (encodeImage) embedders.embedImage = async (image) => embeddingOf(await encodeImage.call(worker, image));
  return embedders;
}

/** A Float32Array, or the recall vector of an encoder result ({u} for text, {e} for images). */
function embeddingOf(r: unknown): Float32Array {
  if (r instanceof Float32Array) return r;
  for (const key of ['u', 'e', 'embedding', 'vector']) {
    const v = prop(r, key);
    if (v instanceof Float32Array) return v;
  }
  throw new BitmarError('BITMAR_ERR_MODEL_ARCH', 'the model returned no embedding vector');
}

type AnyFn = (this: unknown, ...args: unknown[]) => unknown;

function prop(o: unknown, key: string): unknown {
  return typeof o === 'object' || typeof o === 'function' ? (o === null ? undefined : (o as Record<string, unknown>)[key]) : undefined;
}

function fnProp(o: unknown, key: string): AnyFn | undefined {
  const f = prop(o, key);
  return typeof f === 'function' ? (f as AnyFn) : undefined;
}

function isRgbImage(x: unknown): x is RgbImage {
  return typeof prop(x, 'width') === 'number' && typeof prop(x, 'height') === 'number' && prop(x, 'data') instanceof Uint8Array;
}
