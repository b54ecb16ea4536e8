/**
 * Finds and loads the native addon (sources in native/), for the kernels (src/model/kernels-native.ts)
 * and sd_notify (src/service/sd-notify.ts). Tried in order:
 *
 *  1. `BITMAR_NATIVE_ADDON=/path/to/bitmar_native.node`, when set: that file only, no fallback.
 *  2. `build/Release/bitmar_native.node`: built from source at install (tools/build-addon.mjs).
 *  3. `prebuilds/<platform>-<arch>/bitmar_native.node`: shipped in the package
 *     (tools/build-prebuilds.mjs), so an install without a compiler still runs native.
 *
 * A file that is absent, fails to load or is rejected by the caller's check is skipped and noted;
 * when none loads, the error is one line listing what was tried and why each failed.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

import { PACKAGE_ROOT } from './paths.js';

/** Where a candidate comes from. */
export type NativeAddonOrigin = 'override' | 'build' | 'prebuild';

export interface NativeAddonCandidate {
  readonly origin: NativeAddonOrigin;
  readonly path: string;
}

export interface LoadedNativeAddon {
  /** The module's exports. */
  readonly addon: unknown;
  readonly origin: NativeAddonOrigin;
  readonly path: string;
}

export interface NativeAddonOptions {
  /** The package root holding build/ and prebuilds/ (default: this package's). */
  readonly packageRoot?: string;
  /** Where BITMAR_NATIVE_ADDON is read (default: process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Rejects a loaded module with a short reason (e.g. 'has no sdNotify (rebuild it)'), or accepts it with null. */
  readonly check?: (addon: unknown) => string | null;
  readonly platform?: string;
  readonly arch?: string;
}

/** The files tried, in order (see the module comment). */
export function nativeAddonCandidates(options: NativeAddonOptions = {}): NativeAddonCandidate[] {
  const env = options.env ?? process.env;
  const override = env.BITMAR_NATIVE_ADDON;
  if (override) return [{ origin: 'override', path: resolve(override) }];
  const root = options.packageRoot ?? PACKAGE_ROOT;
  const platform = options.platform ?? process.platform;
  const arch = options.arch ?? process.arch;
  return [
    { origin: 'build', path: join(root, 'build', 'Release', 'bitmar_native.node') },
    { origin: 'prebuild', path: join(root, 'prebuilds', `${platform}-${arch}`, 'bitmar_native.node') },
  ];
}

/** Loads the first candidate that loads and passes `check`; throws an Error with a one-line reason otherwise. */
export function loadNativeAddonModule(options: NativeAddonOptions = {}): LoadedNativeAddon {
  const require = createRequire(import.meta.url);
  const candidates = nativeAddonCandidates(options);
  const tried: string[] = [];
  for (const c of candidates) {
    if (!existsSync(c.path)) {
      tried.push(`${c.path} (absent)`);
      continue;
    }
    let addon: unknown;
    try {
      addon = require(c.path);
    } catch (e) {
      tried.push(`${c.path} (failed to load: ${firstLine(e)})`);
      continue;
    }
    const rejected = options.check?.(addon) ?? null;
    if (rejected !== null) {
      tried.push(`${c.path} (${rejected})`);
      continue;
    }
    return { addon, origin: c.origin, path: c.path };
  }
  const head =
    candidates[0]?.origin === 'override'
      ? 'the native addon named by BITMAR_NATIVE_ADDON does not load'
      : candidates.some((c) => existsSync(c.path))
        ? 'no native addon loads'
        : 'the native addon is not built and there is no prebuilt one for this platform';
  throw new Error(`${head}; tried ${tried.join(', ')}`);
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
}
