// What a benchmark result is attached to: CPU model and flags, caches, compiler, commit, Node/V8,
// kernel ISAs, the core clock measured in this run (dependent add chain) and the peak derived from it,
// and the load average at the start (the shared machine's noise).
import { execSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';

import type { NativeAddon } from '../src/model/kernels-native.js';

/** int8 multiply-adds per cycle at peak on x86 with AVX2 or AVX-512 VNNI on 256-bit pipes (docs/performance.md). */
export const MACS_PER_CYCLE = 64;

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly flags: string;
  readonly caches: string;
  readonly compiler: string;
  readonly commit: string;
  readonly node: string;
  readonly v8: string;
  readonly isa: string;
  readonly isas: readonly string[];
  readonly clockGhz: number;
  /** int8 GMAC/s at MACS_PER_CYCLE × clock. */
  readonly peakGmacs: number;
  readonly threads: 1;
  readonly loadAvg: readonly number[];
  readonly date: string;
}

function sh(cmd: string): string {
  try {
    return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '?';
  }
}

/** Collects the machine description; calibrates the clock with the addon's dependent add chain. */
export function machineInfo(addon: NativeAddon): MachineInfo {
  const info = addon.kernelInfo();
  const clockGhz = Math.max(...[0, 1, 2].map(() => addon.benchClockGhz(25e6)));
  const dirty = sh('git status --porcelain --untracked-files=no') !== '' ? ' (with uncommitted changes)' : '';
  return {
    cpu: sh("lscpu | sed -n 's/^Model name:[ ]*//p'") || cpus()[0]?.model || '?',
    cores: cpus().length,
    flags: sh("lscpu | grep -o -w -E 'avx2|fma|avx512f|avx512bw|avx512vl|avx512_vnni|avx_vnni|avx512_bf16|asimddp|sve' | sort -u | tr '\\n' ' '"),
    caches: sh("lscpu | grep -E '^(L1d|L2|L3)' | sed 's/  */ /g' | tr '\\n' ';'"),
    compiler: sh('${CXX:-g++} --version | head -1'),
    commit: sh('git rev-parse --short HEAD') + dirty,
    node: process.version,
    v8: process.versions.v8,
    isa: info.isa,
    isas: info.available,
    clockGhz,
    peakGmacs: clockGhz * MACS_PER_CYCLE,
    threads: 1,
    loadAvg: loadavg().map((v) => Math.round(v * 100) / 100),
    date: new Date().toISOString(),
  };
}
