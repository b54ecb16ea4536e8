/**
 * kill -9 at random moments while a child process writes (crash-writer.ts), then check that the store
 * opens, holds episodes 1…n exactly once (nothing lost but the newest, nothing duplicated), and that every
 * write older than the sync bound before the kill was saved. Used by crash.test.ts (5 kills) and
 * bench/memory.ts (50 kills).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteEpisodicStore } from '../../src/memory/sqlite-store.js';
import { ManualTimers, rng } from './helpers.js';

const WRITER = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));

export interface CrashOptions {
  readonly dir: string;
  readonly kills: number;
  readonly syncIntervalMs: number;
  /** Allowed lateness beyond the interval: the sync itself, timer and scheduling jitter, ms. */
  readonly slackMs: number;
  readonly seed: number;
  /** Longest run after `ready` before the kill, ms. */
  readonly maxRunMs: number;
}

export interface CrashRound {
  readonly phase: 'startup' | 'running';
  readonly killAfterMs: number;
  readonly reported: number;
  readonly persisted: number;
  /** Time from the oldest unsaved reported write to the kill, ms (0 when nothing reported was lost). */
  readonly lossWindowMs: number;
  readonly opened: boolean;
  readonly problem: string | null;
}

export async function crashRounds(o: CrashOptions): Promise<CrashRound[]> {
  const path = join(o.dir, 'memory.sqlite');
  const random = rng(o.seed);
  const rounds: CrashRound[] = [];
  for (let i = 0; i < o.kills; i++) {
    // One round in five is killed during start-up (possibly while the database is created or migrated).
    const phase = i % 5 === 0 ? 'startup' : 'running';
    const delay = Math.round(random() * (phase === 'startup' ? 800 : o.maxRunMs));
    rounds.push(await oneRound(path, o, phase, delay, i));
  }
  return rounds;
}

async function oneRound(path: string, o: CrashOptions, phase: CrashRound['phase'], delayMs: number, i: number): Promise<CrashRound> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, path, String(o.syncIntervalMs), String(o.seed * 1000 + i)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  let onReady: () => void = () => {};
  const ready = new Promise<void>((res) => (onReady = res));
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
    if (out.includes('ready ')) onReady();
  });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  if (phase === 'running') await Promise.race([ready, exited]);
  await new Promise((res) => setTimeout(res, delayMs));
  const killMs = Date.now();
  child.kill('SIGKILL');
  await exited;

  const reports: { id: number; t: number }[] = [];
  for (const line of out.split('\n')) {
    const m = /^w (\d+) (\d+)$/.exec(line);
    if (m) reports.push({ id: Number(m[1]), t: Number(m[2]) });
  }
  let store: SqliteEpisodicStore;
  try {
    store = SqliteEpisodicStore.open({ path, width: 16, timers: new ManualTimers() });
  } catch (e) {
    return { phase, killAfterMs: delayMs, reported: reports.length, persisted: 0, lossWindowMs: 0, opened: false, problem: String(e) };
  }
  let problem: string | null = null;
  const ids = [...store.slots().map((s) => s.episodeId), ...[...store.archived()].map((a) => a.episodeId)].sort((a, b) => a - b);
  store.close();
  const persisted = ids.length === 0 ? 0 : ids[ids.length - 1]!;
  if (ids.some((id, k) => id !== k + 1)) problem = `episodes are not exactly 1…${persisted}`;
  const firstLost = reports.find((r) => r.id > persisted);
  const lossWindowMs = firstLost === undefined ? 0 : killMs - firstLost.t;
  const bound = o.syncIntervalMs + o.slackMs;
  const late = reports.find((r) => r.t < killMs - bound && r.id > persisted);
  if (late !== undefined && problem === null) {
    problem = `episode ${late.id}, written ${killMs - late.t} ms before the kill, was lost (bound ${bound} ms)`;
  }
  return { phase, killAfterMs: delayMs, reported: reports.length, persisted, lossWindowMs, opened: true, problem };
}
