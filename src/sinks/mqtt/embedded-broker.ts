/**
 * The embedded MQTT broker (aedes 1.x) started when no broker URL is configured, so `npm start`
 * works alone and bench devices can connect to the node directly. Loopback only unless `host`
 * says otherwise. aedes 1.x speaks MQTT 3.1.1 (not 5): the transport falls back to 3.1.1 against
 * it; use Mosquitto for MQTT 5 features (expiry, user properties, response topics, $share).
 */
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AedesOptions } from 'aedes';
import { BitmarError } from '../../errors.js';

export interface EmbeddedBrokerOptions {
  /** Interface to bind. Default 127.0.0.1 (loopback only); 0.0.0.0 to let devices on the LAN in. */
  readonly host?: string;
  /** Default 1883; 0 picks a free port. */
  readonly port?: number;
  /** When the port is taken, bind a free one (and say so) instead of failing. Default true. */
  readonly fallbackToFreePort?: boolean;
  /** When set, every client must log in with these (compared in constant time). */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** Serve MQTT over TLS (mqtts://) with these PEM files; `ca` + requireClientCert for client certificates. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca?: string; readonly requireClientCert?: boolean };
  /** aedes persistence instance (tests reuse one across restarts). Default: aedes in-memory. */
  readonly persistence?: AedesOptions['persistence'];
}

export interface EmbeddedBroker {
  /** mqtt://host:port or mqtts://host:port, the port actually bound. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** True when the requested port was in use and a free port was bound instead. */
  readonly portInUse: boolean;
  /** What happened, for the log: the port in use and the one bound instead; undefined otherwise. */
  readonly message?: string;
  /** Connected clients now. */
  readonly clients: number;
  /** Disconnects every client, stops listening; idempotent. */
  close(): Promise<void>;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => {
      server.off('listening', onListening);
      reject(e);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

function sameSecret(a: string, b: Buffer | undefined): boolean {
  if (b === undefined) return false;
  const x = Buffer.from(a);
  return x.length === b.length && timingSafeEqual(x, b);
}

/**
 * Starts aedes on host:port. Throws BITMAR_ERR_MQTT_PORT_IN_USE when the port is taken and
 * fallbackToFreePort is false, BITMAR_ERR_MQTT_CONNECT for other listen or TLS file errors.
 */
export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? '127.0.0.1';
  const requested = options.port ?? 1883;
  const creds = options.credentials;
  const aedes = await Aedes.createBroker({
    ...(options.persistence !== undefined ? { persistence: options.persistence } : {}),
    ...(creds !== undefined
      ? {
          authenticate: (_client, username, password, done) => {
            if (username === creds.username && sameSecret(creds.password, password)) {
              done(null, true);
              return;
            }
            const err = Object.assign(new Error('bad user name or password'), { returnCode: 4 as const });
            done(err, false);
          },
        }
      : {}),
  });
  // aedes.handle is a property holding a function bound to the broker.
  const handle = (socket: Parameters<Aedes['handle']>[0]): void => {
    aedes.handle(socket);
  };
  let server: Server;
  try {
    server = options.tls
      ? createTlsServer(
          {
            cert: readFileSync(options.tls.cert),
            key: readFileSync(options.tls.key),
            ...(options.tls.ca !== undefined ? { ca: readFileSync(options.tls.ca) } : {}),
            requestCert: options.tls.requireClientCert === true,
            rejectUnauthorized: options.tls.requireClientCert === true,
          },
          handle,
        )
      : createNetServer(handle);
  } catch (e) {
    aedes.close();
    throw new BitmarError('BITMAR_ERR_MQTT_CONNECT', `Embedded MQTT broker: cannot read its TLS files: ${(e as Error).message}`, { cause: e });
  }

  let port: number;
  let portInUse = false;
  let message: string | undefined;
  try {
    port = await listen(server, host, requested);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EADDRINUSE') {
      aedes.close();
      throw new BitmarError('BITMAR_ERR_MQTT_CONNECT', `Embedded MQTT broker cannot listen on ${host}:${requested}: ${(e as Error).message}`, { cause: e });
    }
    if (options.fallbackToFreePort === false) {
      aedes.close();
      throw new BitmarError(
        'BITMAR_ERR_MQTT_PORT_IN_USE',
        `Port ${requested} on ${host} is in use (another MQTT broker?). Set mqtt.url to use that broker, choose another --mqtt-port, or allow a free port.`,
        { cause: e },
      );
    }
    port = await listen(server, host, 0);
    portInUse = true;
    message = `Port ${requested} on ${host} is in use (another MQTT broker?); the embedded broker listens on ${host}:${port} instead. Point devices there, or set mqtt.url to use the broker on ${requested}.`;
  }

  const scheme = options.tls ? 'mqtts' : 'mqtt';
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  let closing: Promise<void> | null = null;
  return {
    url: `${scheme}://${urlHost}:${port}`,
    host,
    port,
    portInUse,
    ...(message !== undefined ? { message } : {}),
    get clients() {
      return aedes.connectedClients;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        // aedes.close() ends every client connection, so server.close() does not wait on them.
        aedes.close(() => server.close(() => resolve()));
      });
      return closing;
    },
  };
}
