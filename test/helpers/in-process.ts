// The gateway started inside the test process on an in-memory store, with passive tasks run on
// this thread (InlineDataPlane): handler tests need no dist/, no child process and no S3 server,
// and can reach into the server's seams (the store, the transfer log). Real TLS, real sockets.
import { randomBytes } from 'node:crypto';
import { parseConfig } from '../../src/config.ts';
import { loadTlsMaterial, type TlsMaterial } from '../../src/tls/material.ts';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server.ts';
import { InlineDataPlane } from '../../src/data/inline-plane.ts';
import { memoryStore, type MemoryStorage } from '../../src/storage/memory.ts';
import { setLogLevel } from '../../src/log.ts';

export interface InProcessGateway {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** The in-memory store behind the logins, to set up and check objects directly. */
  readonly store: MemoryStorage;
  readonly server: RunningServer;
  close(): Promise<void>;
}

export interface InProcessOptions {
  /** Extra gateway flags after the defaults (loopback, a passive range of its own). */
  readonly args?: readonly string[];
  readonly transferLog?: ServerOptions['transferLog'];
}

let material: Promise<TlsMaterial> | undefined;

/** A passive range of 200 ports away from the default range and from other test files' ranges. */
function passiveRange(): string {
  const low = 30_000 + 200 * Math.floor(Math.random() * 100);
  return `${low}-${low + 199}`;
}

export async function startInProcess(options: InProcessOptions = {}): Promise<InProcessGateway> {
  setLogLevel('error');
  // S3FTPD_TEST_TLS_ENGINE picks the data connections' TLS engine, as for spawned gateways.
  const engineFromEnv = process.env.S3FTPD_TEST_TLS_ENGINE;
  const env = engineFromEnv === undefined ? {} : { S3FTPD_TLS_ENGINE: engineFromEnv };
  const config = parseConfig(['--listen', '127.0.0.1:0', '--pasv-ports', passiveRange(), ...(options.args ?? [])], env);
  material ??= loadTlsMaterial(config);
  const tls = await material;
  const name = randomBytes(6).toString('hex');
  const user = `INPROC${name.toUpperCase()}`;
  const password = randomBytes(12).toString('hex');
  const dataPlane = new InlineDataPlane({
    pasvLow: config.pasvLow,
    pasvHigh: config.pasvHigh,
    acceptTimeoutMs: config.acceptTimeoutMs,
    stallTimeoutMs: config.stallTimeoutMs,
    tls,
    tlsEngine: config.tlsEngine,
  });
  const server = await startServer({
    config,
    tls,
    dataPlane,
    transferLog: options.transferLog,
    authenticator: {
      authenticate: async (accessKeyId, secret) => (accessKeyId === user && secret === password ? { kind: 'memory', name } : undefined),
    },
    storageReachable: async () => true,
  });
  return {
    host: server.address.address,
    port: server.address.port,
    user,
    password,
    store: memoryStore(name),
    server,
    close: () => server.close(),
  };
}
