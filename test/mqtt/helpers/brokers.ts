/**
 * Real brokers for the interop suites, each on a free loopback port, each restartable on the same
 * port (broker-restart tests) and always cleaned up: Mosquitto (the apt binary, a generated config,
 * persistence on so sessions survive a restart) and the embedded aedes broker (one in-memory
 * persistence shared across restarts, the same effect).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../../src/sinks/mqtt/embedded-broker.js';

// aedes's own in-memory persistence (CommonJS; its types declare an ESM default export).
const memoryPersistence = createRequire(import.meta.url)('aedes-persistence') as () => unknown;

export interface BrokerTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly requireClientCert: boolean;
}

export interface BrokerOptions {
  readonly tls?: BrokerTls;
  readonly credentials?: { readonly username: string; readonly password: string };
  /** Largest packet the broker accepts from publishers (Mosquitto only). */
  readonly maxPacketSize?: number;
}

/** What a suite needs from a broker, whichever it is. */
export interface TestBroker {
  readonly name: 'mosquitto' | 'aedes';
  /** MQTT 5 (properties, $share) supported. */
  readonly mqtt5: boolean;
  readonly url: string;
  readonly port: number;
  /** Stops the broker (sessions and retained messages persist for start()). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** Stops it and removes its files. Idempotent. */
  dispose(): Promise<void>;
}

export function findBinary(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin']) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export const MOSQUITTO = process.env.MOSQUITTO_BIN ?? findBinary('mosquitto');

/** A port nobody listens on right now (bind 0, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once a TCP connection to the port succeeds; rejects after timeoutMs. */
export async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

class MosquittoBroker implements TestBroker {
  readonly name = 'mosquitto';
  readonly mqtt5 = true;
  private proc: ChildProcess | null = null;
  private log = '';
  private constructor(
    readonly port: number,
    readonly url: string,
    private readonly dir: string,
    private readonly conf: string,
  ) {}

  static async create(opts: BrokerOptions): Promise<MosquittoBroker> {
    if (MOSQUITTO === undefined) throw new Error('mosquitto binary not found');
    const dir = mkdtempSync(join(tmpdir(), 'bitmar-mosq-'));
    const port = await freePort();
    const lines = [
      `user ${userInfo().username}`, // do not drop privileges to 'mosquitto' (it could not read our temp dir)
      `listener ${port} 127.0.0.1`,
      'persistence true',
      `persistence_location ${dir}/`,
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'max_queued_messages 100000',
    ];
    if (opts.maxPacketSize !== undefined) lines.push(`max_packet_size ${opts.maxPacketSize}`);
    if (opts.credentials !== undefined) {
      const pw = join(dir, 'passwd');
      const r = spawnSync('mosquitto_passwd', ['-b', '-c', pw, opts.credentials.username, opts.credentials.password], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mosquitto_passwd failed: ${r.stderr}`);
      lines.push('allow_anonymous false', `password_file ${pw}`);
    } else {
      lines.push('allow_anonymous true');
    }
    if (opts.tls !== undefined) {
      lines.push(`cafile ${opts.tls.ca}`, `certfile ${opts.tls.cert}`, `keyfile ${opts.tls.key}`, `require_certificate ${opts.tls.requireClientCert}`);
    }
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, `${lines.join('\n')}\n`);
    const b = new MosquittoBroker(port, `${opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`, dir, conf);
    await b.start();
    return b;
  }

  async start(): Promise<void> {
    if (this.proc !== null) return;
    const proc = spawn(MOSQUITTO as string, ['-c', this.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr?.on('data', (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-4000);
    });
    this.proc = proc;
    const exited = new Promise<never>((_, reject) => proc.once('exit', (code) => reject(new Error(`mosquitto exited (${code}): ${this.log}`))));
    await Promise.race([waitForPort(this.port), exited]);
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc === null) return;
    this.proc = null;
    if (proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      proc.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      proc.kill('SIGTERM'); // mosquitto saves its persistence file on SIGTERM
    });
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

class AedesBroker implements TestBroker {
  readonly name = 'aedes';
  readonly mqtt5 = false;
  private broker: EmbeddedBroker | null = null;
  private readonly persistence = memoryPersistence();
  private constructor(
    private readonly opts: BrokerOptions,
    public port: number,
  ) {}

  get url(): string {
    return `${this.opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${this.port}`;
  }

  static async create(opts: BrokerOptions): Promise<AedesBroker> {
    const b = new AedesBroker(opts, 0);
    await b.start();
    return b;
  }

  async start(): Promise<void> {
    if (this.broker !== null) return;
    this.broker = await startEmbeddedBroker({
      port: this.port,
      fallbackToFreePort: false,
      persistence: this.persistence,
      ...(this.opts.credentials !== undefined ? { credentials: this.opts.credentials } : {}),
      ...(this.opts.tls !== undefined ? { tls: this.opts.tls } : {}),
    });
    this.port = this.broker.port;
  }

  async stop(): Promise<void> {
    const b = this.broker;
    this.broker = null;
    await b?.close();
  }

  async dispose(): Promise<void> {
    await this.stop();
  }
}

export type BrokerKind = 'mosquitto' | 'aedes';

/** Why a broker kind cannot run here, or undefined when it can. */
export function unavailable(kind: BrokerKind): string | undefined {
  if (kind === 'mosquitto' && MOSQUITTO === undefined) {
    return 'mosquitto not installed (apt-get install mosquitto mosquitto-clients; .ci/run does): Mosquitto interop suite skipped';
  }
  return undefined;
}

export async function startBroker(kind: BrokerKind, opts: BrokerOptions = {}): Promise<TestBroker> {
  return kind === 'mosquitto' ? MosquittoBroker.create(opts) : AedesBroker.create(opts);
}
