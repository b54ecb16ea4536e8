/** The policy table: name → factory, with parameter validation (invalid values are rejected, never clamped). */
import { BitmarError } from '../../errors.js';
import { fifo } from './fifo.js';
import { lfu } from './lfu.js';
import { lru } from './lru.js';
import { POLICY_NAMES, type EvictionPolicy, type PolicyConfig, type PolicyName, type PolicySpec } from './policy.js';
import { r1Score } from './r1-score.js';
import { reservoir } from './reservoir.js';
import { similarityMerge } from './similarity-merge.js';
import { ttl } from './ttl.js';

export * from './policy.js';

export const DEFAULT_MERGE_THRESHOLD = 0.9;
export const DEFAULT_MERGE_ALPHA = 0.2;
export const DEFAULT_TTL_MS = 3_600_000;

/** Fills in defaults and validates; throws BITMAR_ERR_CONFIG_INVALID naming the allowed values. */
export function resolvePolicy(spec: PolicySpec): PolicyConfig {
  const name: unknown = typeof spec === 'string' ? spec : spec.name;
  if (!isPolicyName(name)) {
    throw new BitmarError(
      'BITMAR_ERR_CONFIG_INVALID',
      `memory.policy: unknown policy ${JSON.stringify(name)}; allowed: ${POLICY_NAMES.join(', ')}`,
    );
  }
  if (name === 'similarity-merge') {
    const s: { threshold?: number; alpha?: number } =
      typeof spec === 'string' || spec.name !== 'similarity-merge' ? {} : spec;
    const threshold = s.threshold ?? DEFAULT_MERGE_THRESHOLD;
    const alpha = s.alpha ?? DEFAULT_MERGE_ALPHA;
    if (!(threshold > -1 && threshold <= 1)) invalid('threshold', threshold, 'a number in (−1, 1]');
    if (!(alpha > 0 && alpha <= 1)) invalid('alpha', alpha, 'a number in (0, 1]');
    return { name, threshold, alpha };
  }
  if (name === 'ttl') {
    const ttlMs = typeof spec === 'string' || spec.name !== 'ttl' ? DEFAULT_TTL_MS : (spec.ttlMs ?? DEFAULT_TTL_MS);
    if (!(ttlMs > 0 && Number.isFinite(ttlMs))) invalid('ttlMs', ttlMs, 'a finite number > 0');
    return { name, ttlMs };
  }
  return { name };
}

export function isPolicyName(name: unknown): name is PolicyName {
  return typeof name === 'string' && (POLICY_NAMES as readonly string[]).includes(name);
}

/** The policy object for a config. */
export function createPolicy(config: PolicyConfig): EvictionPolicy {
  switch (config.name) {
    case 'lru':
      return lru();
    case 'lfu':
      return lfu();
    case 'fifo':
      return fifo();
    case 'r1-score':
      return r1Score();
    case 'similarity-merge':
      return similarityMerge(config.threshold, config.alpha);
    case 'reservoir':
      return reservoir();
    case 'ttl':
      return ttl(config.ttlMs);
  }
}

function invalid(key: string, value: unknown, allowed: string): never {
  throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `memory.policy.${key}: ${String(value)} is invalid; allowed: ${allowed}`);
}
