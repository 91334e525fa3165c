// The control listeners: accept connections, refuse banned addresses and those past the limits,
// create sessions; graceful shutdown and certificate reload.
import * as net from 'node:net';
import { BroadcastChannel } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from './config.ts';
import { TlsSessionStore } from './tls/sessions.ts';
import { Session, type Authenticator, type ServerContext } from './control/session.ts';
import { dispatch } from './control/commands.ts';
import { Reply, formatReply } from './control/replies.ts';
import { TLS_RELOAD_CHANNEL, type TlsMaterial } from './tls/material.ts';
import { FailedLoginGuard } from './control/login-guard.ts';
import { ConnectionLimits } from './control/connection-limits.ts';
import { DataPlane } from './data/pool.ts';
import { log } from './log.ts';
import { xferLogger } from './xferlog.ts';
import { plainAddress } from './net-address.ts';
import { Metrics, serveMetrics } from './metrics.ts';

export interface RunningServer {
  readonly address: net.AddressInfo;
  readonly addresses: readonly net.AddressInfo[];
  readonly implicitAddress: net.AddressInfo | undefined;
  readonly metricsAddress: net.AddressInfo | undefined;
  /** Stops accepting, lets running transfers finish up to the drain timeout, then aborts the rest. */
  close(): Promise<void>;
  reloadTls(material: TlsMaterial): void;
}

export interface ServerOptions {
  readonly config: Config;
  readonly tls: TlsMaterial;
  readonly authenticator: Authenticator;
  /** Whether the storage answers at all (for /readyz). */
  readonly storageReachable: () => Promise<boolean>;
}

function listen(server: net.Server, host: string, port: number): Promise<net.AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve(server.address() as net.AddressInfo);
    });
  });
}

export async function startServer({ config, tls: material, authenticator, storageReachable }: ServerOptions): Promise<RunningServer> {
  const metrics = new Metrics();
  const dataPlane = new DataPlane({
    workers: config.workers,
    pasvLow: config.pasvLow,
    pasvHigh: config.pasvHigh,
    acceptTimeoutMs: config.acceptTimeoutMs,
    stallTimeoutMs: config.stallTimeoutMs,
    logLevel: config.logLevel,
    tls: material,
    uploadBufferBudget: config.uploadBufferBudget,
  });
  const loginGuard = new FailedLoginGuard({
    maxFailures: config.maxLoginFailures,
    banMs: config.banMs,
    delayStepMs: 500,
    allowList: config.allowList,
    now: Date.now,
    onBan: (address) => {
      metrics.bans.inc();
      log.warn('address banned after failed logins', { remote: address, seconds: config.banMs / 1000 });
    },
  });
  const limits = new ConnectionLimits(config.maxConnections, config.maxConnectionsPerIp);
  let currentMaterial = material;
  const context: ServerContext = {
    config,
    tlsMaterial: () => currentMaterial,
    dataPlane,
    // Per binding: one control connection's few sessions, or (address) all of an address's parallel
    // connections (rclone runs 12); enough bindings for every connection allowed.
    tlsSessions: new TlsSessionStore(config.tlsSessionReuse === 'address' ? 32 : 4, Math.max(4096, config.maxConnections)),
    authenticator,
    loginGuard,
    now: () => new Date(),
    transferLog: xferLogger(config.xferlog),
    metrics,
    draining: () => draining,
  };
  let draining = false;
  const sessions = new Set<Session>();

  const accept = (socket: net.Socket, implicitTls: boolean): void => {
    const remote = plainAddress(socket.remoteAddress);
    socket.on('error', () => undefined);
    // Replies are small writes answered by the client's next command: Nagle would hold them back.
    socket.setNoDelay(true);
    if (loginGuard.isBanned(remote)) {
      metrics.refusedConnections.inc({ reason: 'banned' });
      if (!implicitTls) socket.end(formatReply(Reply.ServiceNotAvailable, 'Too many failed logins; try again later.'));
      else socket.destroy();
      return;
    }
    if (!limits.admit(remote)) {
      metrics.refusedConnections.inc({ reason: 'limit' });
      log.warn('connection refused: limit reached', { remote, open: limits.open });
      if (!implicitTls) socket.end(formatReply(Reply.ServiceNotAvailable, 'Too many connections; try again later.'));
      else socket.destroy();
      return;
    }
    const session = new Session(socket, context, dispatch);
    sessions.add(session);
    metrics.sessions.inc();
    session.onClosed(() => {
      sessions.delete(session);
      limits.release(remote);
      metrics.sessions.dec();
    });
    log.info('session opened', { session: session.id, remote, implicitTls });
    if (implicitTls) {
      try {
        session.upgradeToTls();
      } catch (error) {
        log.error('implicit TLS failed', { session: session.id, error: String(error) });
        socket.destroy();
        return;
      }
    }
    session.reply(Reply.ServiceReady, implicitTls ? 's3ftpd ready.' : 's3ftpd ready; explicit FTPS (AUTH TLS) required.');
  };

  const controls = config.listen.map(() => net.createServer((socket) => accept(socket, false)));
  const addresses = await Promise.all(controls.map((server, i) => listen(server, config.listen[i]?.host ?? '', config.listen[i]?.port ?? 0)));
  const address = addresses[0] as net.AddressInfo;
  let implicit: net.Server | undefined;
  let implicitAddress: net.AddressInfo | undefined;
  if (config.implicitTlsHost !== undefined && config.implicitTlsPort !== undefined) {
    implicit = net.createServer((socket) => accept(socket, true));
    implicitAddress = await listen(implicit, config.implicitTlsHost, config.implicitTlsPort);
  }
  const tlsUpdates = new BroadcastChannel(TLS_RELOAD_CHANNEL);
  tlsUpdates.unref();
  const metricsServer =
    config.metricsHost !== undefined && config.metricsPort !== undefined
      ? await serveMetrics(
          metrics,
          {
            ready: async () => dataPlane.threadCount > 0 && (await storageReachable()),
            utilization: () => dataPlane.utilization,
            passivePorts: () => dataPlane.openChannels,
            uploadBufferBytes: () => dataPlane.uploadBufferBytes,
          },
          config.metricsHost,
          config.metricsPort,
        )
      : undefined;

  return {
    address,
    addresses,
    implicitAddress,
    metricsAddress: metricsServer?.address,
    reloadTls(next: TlsMaterial): void {
      currentMaterial = next;
      tlsUpdates.postMessage(next);
      log.info('TLS certificate reloaded');
    },
    async close(): Promise<void> {
      draining = true;
      for (const control of controls) control.close();
      implicit?.close();
      const running = [...sessions].flatMap((s) => (s.transfer ? [s.transfer.done] : []));
      if (running.length > 0) {
        log.info('draining transfers', { transfers: running.length, timeoutMs: config.drainTimeoutMs });
        await Promise.race([Promise.allSettled(running), sleep(config.drainTimeoutMs, undefined, { ref: false })]);
      }
      // Whatever still runs is aborted: an upload cut here is never committed.
      const leftovers = [...sessions].flatMap((s) => (s.transfer ? [s.transfer] : []));
      for (const transfer of leftovers) transfer.channel.cancel();
      await Promise.race([Promise.allSettled(leftovers.map((t) => t.done)), sleep(5000, undefined, { ref: false })]);
      for (const session of sessions) {
        session.reply(Reply.ServiceNotAvailable, 'Server shutting down.');
        session.close();
      }
      tlsUpdates.close();
      metricsServer?.close();
      metrics.close();
      await dataPlane.close();
    },
  };
}
