/**
 * Input health for /diagnostics (REP 107 style DiagnosticStatus): frames, prompts and drops by reason
 * of a source, WARN while inputs are being dropped (anything but sampling), OK otherwise.
 */
import type { DropReason } from '../types.js';
import type { InputCounts } from './inputs.js';
import type { DiagnosticStatusInput } from './messages.js';

export type InputCountsSnapshot = ReturnType<InputCounts['snapshot']>;

/**
 * Turns successive count snapshots into statuses; the level reflects what happened since the
 * previous call, the values are totals since start.
 */
export function createInputHealth(name: string, hardwareId = ''): (counts: InputCountsSnapshot) => DiagnosticStatusInput {
  let previous: InputCountsSnapshot | undefined;
  return (counts) => {
    const dropsSince = (reason: DropReason): number => (counts.drops[reason] ?? 0) - (previous?.drops[reason] ?? 0);
    const bad = (Object.keys(counts.drops) as DropReason[]).filter((r) => r !== 'sampled_out' && dropsSince(r) > 0);
    const framesSince = counts.frames - (previous?.frames ?? 0);
    const message = bad.length > 0 ? `dropping input: ${bad.map((r) => `${dropsSince(r)} ${r}`).join(', ')}` : `${framesSince} frames since the last report`;
    previous = counts;
    const values: Record<string, number> = { frames: counts.frames, prompts: counts.prompts };
    for (const [reason, n] of Object.entries(counts.drops)) values[`dropped.${reason}`] = n;
    return { level: bad.length > 0 ? 'warn' : 'ok', name, message, hardwareId, values };
  };
}
