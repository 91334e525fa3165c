// The control listener: accepts connections, refuses banned addresses, creates sessions.
import * as net from 'node:net';
import type { Config } from './config.ts';
import { Session, type Authenticator, type ServerContext } from './control/session.ts';
import { dispatch } from './control/commands.ts';
import { Reply, formatReply } from './control/replies.ts';
import { createServerContext, type TlsMaterial } from './control/tls.ts';
import { FailedLoginGuard } from './control/login-guard.ts';
import { DataPlane } from './data/pool.ts';
import { log } from './log.ts';

export interface RunningServer {
  readonly address: net.AddressInfo;
  close(): Promise<void>;
}

export interface ServerOptions {
  readonly config: Config;
  readonly tls: TlsMaterial;
  readonly authenticator: Authenticator;
}

export async function startServer({ config, tls, authenticator }: ServerOptions): Promise<RunningServer> {
  const dataPlane = new DataPlane({
    workers: config.workers,
    pasvLow: config.pasvLow,
    pasvHigh: config.pasvHigh,
    acceptTimeoutMs: 30_000,
    tls,
  });
  const loginGuard = new FailedLoginGuard({ maxFailures: 5, banMs: 15 * 60_000, delayStepMs: 500, now: Date.now });
  const context: ServerContext = {
    config,
    tlsContext: createServerContext(tls),
    dataPlane,
    authenticator,
    loginGuard,
    now: () => new Date(),
  };
  const sessions = new Set<Session>();
  const server = net.createServer((socket) => {
    const remote = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    if (loginGuard.isBanned(remote)) {
      socket.end(formatReply(Reply.ServiceNotAvailable, 'Too many failed logins; try again later.'));
      return;
    }
    const session = new Session(socket, context, dispatch);
    sessions.add(session);
    socket.once('close', () => sessions.delete(session));
    log.info('session opened', { session: session.id, remote });
    session.reply(Reply.ServiceReady, 's3ftpd ready; explicit FTPS (AUTH TLS) required.');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: config.listenHost, port: config.listenPort }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;
  return {
    address,
    async close(): Promise<void> {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.close();
      });
      await dataPlane.close();
    },
  };
}
