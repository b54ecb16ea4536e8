/**
 * Prints captions as they stream: on a TTY, the caption being generated plus a live status line;
 * otherwise plain lines (one per final caption, tokens appended as they come).
 */
import type { Writable } from 'node:stream';
import type { PipelineEvent } from '../../pipeline/events.js';

export interface TerminalStatus {
  fps: number;
  tokensPerSec: number;
  p50Ms: number;
  p99Ms: number;
  drops: number;
  memoryFill: string;
  /** Synthetic frames only: captions equal to the ground truth / captions judged. */
  correct: string;
}

export class TerminalSink {
  private partialOpen = false;
  private readonly latencies: number[] = [];
  private frames = 0;
  private tokens = 0;
  private drops = 0;
  private windowStart = Date.now();
  private lastStatus: TerminalStatus | null = null;
  private right = 0;
  private wrong = 0;

  constructor(
    private readonly out: Writable & { isTTY?: boolean; columns?: number },
    private readonly memoryFill: () => string = () => '-',
  ) {}

  private get tty(): boolean {
    return this.out.isTTY === true;
  }

  observe(ev: PipelineEvent): void {
    switch (ev.type) {
      case 'token':
        this.tokens++;
        if (!this.partialOpen) {
          this.clearStatus();
          this.out.write(`[${ev.token.seq}] `);
          this.partialOpen = true;
        }
        this.out.write(ev.token.piece);
        break;
      case 'caption': {
        const c = ev.caption;
        if (!this.partialOpen) {
          this.clearStatus();
          this.out.write(`[${c.seq}] ${c.text}`);
        }
        const ms = c.latency.frameToCaptionMs;
        this.out.write(`${c.cancelled ? '  (cancelled)' : ''}  — ${ms.toFixed(1)} ms, frame ${c.frame.id}${this.verdict(c)}\n`);
        this.partialOpen = false;
        if (!c.cancelled) this.latencies.push(ms);
        if (this.latencies.length > 512) this.latencies.splice(0, this.latencies.length - 512);
        this.drawStatus();
        break;
      }
      case 'encoded':
        this.frames += ev.frames;
        break;
      case 'drop':
        if (ev.drop.reason !== 'sampled_out') this.drops++;
        break;
      default:
        break;
    }
  }

  /** For synthetic frames asked to describe the scene: whether the caption equals the ground truth. */
  private verdict(c: { prompt: string; text: string; cancelled: boolean; frame: { truth?: { caption: string } } }): string {
    const truth = c.frame.truth?.caption;
    const prompt = c.prompt.trim().toLowerCase();
    if (!truth || c.cancelled || (prompt !== '' && prompt !== 'describe the scene')) return '';
    const norm = (t: string): string => t.trim().toLowerCase().split(/\s+/).join(' ');
    if (norm(c.text) === norm(truth)) {
      this.right++;
      return '  ✓';
    }
    this.wrong++;
    return `  ✗ (truth: ${truth})`;
  }

  status(): TerminalStatus {
    const secs = Math.max(1e-3, (Date.now() - this.windowStart) / 1000);
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const pct = (p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : 0);
    const judged = this.right + this.wrong;
    return {
      fps: this.frames / secs,
      tokensPerSec: this.tokens / secs,
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
      drops: this.drops,
      memoryFill: this.memoryFill(),
      correct: judged ? `${this.right}/${judged}` : '-',
    };
  }

  private drawStatus(): void {
    if (!this.tty) return;
    const s = this.status();
    this.lastStatus = s;
    const line = `fps ${s.fps.toFixed(1)} | tok/s ${s.tokensPerSec.toFixed(0)} | p50 ${s.p50Ms.toFixed(1)} ms p99 ${s.p99Ms.toFixed(1)} ms | drops ${s.drops} | memory ${s.memoryFill} | correct ${s.correct}`;
    this.out.write(`\x1b[2m${line.slice(0, (this.out.columns ?? 120) - 1)}\x1b[0m\r`);
  }

  private clearStatus(): void {
    if (this.tty && this.lastStatus) this.out.write('\x1b[2K\r');
  }

  /** Ends an open partial line so the shell prompt starts clean. */
  close(): void {
    if (this.partialOpen) this.out.write('\n');
    this.clearStatus();
    this.partialOpen = false;
    const judged = this.right + this.wrong;
    if (judged > 0) this.out.write(`synthetic ground truth: ${this.right} of ${judged} captions exact (${((100 * this.right) / judged).toFixed(1)}%)\n`);
  }
}
