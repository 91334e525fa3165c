// The control listeners: accept connections, refuse banned addresses and those past the limits,
// create sessions; graceful shutdown and certificate reload.
import * as net from 'node:net';
import { BroadcastChannel } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from './config.ts';
import { TlsSessionStore } from './tls/sessions.ts';
import { ServerTls } from './tls/server-tls.ts';
import { TLS_RELOAD_CHANNEL, type TlsMaterial } from './tls/material.ts';
import { Session, type ServerContext } from './control/session.ts';
import { dispatch } from './control/commands.ts';
import { Reply, formatReply } from './control/replies.ts';
import { FailedLoginGuard } from './control/login-guard.ts';
import { ConnectionLimits } from './control/connection-limits.ts';
import type { DataPlane } from './data/data-plane.ts';
import { WorkerDataPlane } from './data/pool.ts';
import type { Authenticator } from './storage/backend.ts';
import { observeStorageCalls } from './storage/index.ts';
import { log } from './log.ts';
import { xferLogger } from './xferlog.ts';
import { plainAddress } from './net-address.ts';
import { clientAddressOf, parseCidrList } from './net/proxy-protocol.ts';
import { Metrics, serveMetrics } from './metrics.ts';
import { recordS3Call } from './metrics/s3-calls.ts';

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
  /** The data plane; by default the worker pool. The in-process test harness runs its own. */
  readonly dataPlane?: DataPlane;
  /** Receives one record per finished transfer; by default the xferlog file of the config, if any. */
  readonly transferLog?: ServerContext['transferLog'];
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

function workerDataPlane(config: Config, tls: TlsMaterial): DataPlane {
  return new WorkerDataPlane({
    workers: config.workers,
    pasvLow: config.pasvLow,
    pasvHigh: config.pasvHigh,
    acceptTimeoutMs: config.acceptTimeoutMs,
    stallTimeoutMs: config.stallTimeoutMs,
    logLevel: config.logLevel,
    tls,
    uploadBufferBudget: config.uploadBufferBudget,
    tlsEngine: config.tlsEngine,
  });
}

function loginGuardFor(config: Config, metrics: Metrics): FailedLoginGuard {
  return new FailedLoginGuard({
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
}

/** The accept policy: banned addresses and those past the connection limits are turned away. */
function refusal(context: ServerContext, limits: ConnectionLimits, remote: string): string | undefined {
  if (context.loginGuard.isBanned(remote)) {
    context.metrics.refusedConnections.inc({ reason: 'banned' });
    return 'Too many failed logins; try again later.';
  }
  if (!limits.admit(remote)) {
    context.metrics.refusedConnections.inc({ reason: 'limit' });
    log.warn('connection refused: limit reached', { remote, open: limits.open });
    return 'Too many connections; try again later.';
  }
  return undefined;
}

/** Running sessions and, on close, their orderly end: drain, abort what is left, say goodbye. */
class SessionRegistry {
  readonly #sessions = new Set<Session>();

  add(session: Session, onClosed: () => void): void {
    this.#sessions.add(session);
    session.onClosed(() => {
      this.#sessions.delete(session);
      onClosed();
    });
  }

  async drain(timeoutMs: number): Promise<void> {
    const running = [...this.#sessions].flatMap((s) => (s.transfer ? [s.transfer.done] : []));
    if (running.length > 0) {
      log.info('draining transfers', { transfers: running.length, timeoutMs });
      await Promise.race([Promise.allSettled(running), sleep(timeoutMs, undefined, { ref: false })]);
    }
    // Whatever still runs is aborted: an upload cut here is never committed.
    const leftovers = [...this.#sessions].flatMap((s) => (s.transfer ? [s.transfer] : []));
    for (const transfer of leftovers) transfer.channel.cancel();
    await Promise.race([Promise.allSettled(leftovers.map((t) => t.done)), sleep(5000, undefined, { ref: false })]);
    for (const session of this.#sessions) {
      session.reply(Reply.ServiceNotAvailable, 'Server shutting down.');
      session.close();
    }
  }
}

async function startMetricsEndpoint(
  config: Config,
  metrics: Metrics,
  dataPlane: DataPlane,
  storageReachable: () => Promise<boolean>,
  draining: () => boolean,
): Promise<{ address: net.AddressInfo; close: () => void } | undefined> {
  if (config.metricsHost === undefined || config.metricsPort === undefined) return undefined;
  const probes = {
    // Not ready from the moment the drain starts, so a balancer's health check takes this
    // instance out while its transfers finish.
    ready: async () => !draining() && dataPlane.threadCount > 0 && (await storageReachable()),
    utilization: () => dataPlane.utilization,
    passivePorts: () => dataPlane.openChannels,
    uploadBufferBytes: () => dataPlane.uploadBufferBytes,
  };
  return serveMetrics(metrics, probes, config.metricsHost, config.metricsPort);
}

/** Accepts one control connection: the accept policy first, then a session with its greeting. */
function sessionAcceptor(context: ServerContext, limits: ConnectionLimits, sessions: SessionRegistry): (socket: net.Socket, implicitTls: boolean) => void {
  const balancers = parseCidrList(context.config.proxyProtocolFrom);
  const admit = (socket: net.Socket, implicitTls: boolean, remote: string): void => {
    const refused = refusal(context, limits, remote);
    if (refused !== undefined) {
      // On the implicit-TLS port a plain-text reply would be read as a broken handshake.
      if (!implicitTls) socket.end(formatReply(Reply.ServiceNotAvailable, refused));
      else socket.destroy();
      return;
    }
    openSession(context, sessions, socket, implicitTls, remote, () => limits.release(remote));
  };
  return (socket, implicitTls) => {
    socket.on('error', () => undefined);
    // Replies are small writes answered by the client's next command: Nagle would hold them back.
    socket.setNoDelay(true);
    const peer = plainAddress(socket.remoteAddress);
    clientAddressOf(socket, peer, balancers).then(
      (remote) => admit(socket, implicitTls, remote),
      (error: unknown) => {
        // A trusted balancer that sends no valid header: nothing it says can be believed.
        log.warn('connection dropped: bad PROXY header', { peer, error: error instanceof Error ? error.message : String(error) });
        socket.destroy();
      },
    );
  };
}

function openSession(context: ServerContext, sessions: SessionRegistry, socket: net.Socket, implicitTls: boolean, remote: string, release: () => void): void {
  const session = new Session(socket, context, dispatch, remote);
  context.metrics.sessions.inc();
  sessions.add(session, () => {
    release();
    context.metrics.sessions.dec();
  });
  log.info('session opened', { session: session.id, remote, peer: plainAddress(socket.remoteAddress), implicitTls });
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
}

interface Listeners {
  readonly servers: readonly net.Server[];
  readonly addresses: readonly net.AddressInfo[];
  readonly implicitAddress: net.AddressInfo | undefined;
}

/** Every --listen address for explicit FTPS, and the implicit-TLS address if one is set. */
async function startListeners(config: Config, accept: (socket: net.Socket, implicitTls: boolean) => void): Promise<Listeners> {
  const controls = config.listen.map(() => net.createServer((socket) => accept(socket, false)));
  const addresses = await Promise.all(controls.map((server, i) => listen(server, config.listen[i]?.host ?? '', config.listen[i]?.port ?? 0)));
  if (config.implicitTlsHost === undefined || config.implicitTlsPort === undefined) return { servers: controls, addresses, implicitAddress: undefined };
  const implicit = net.createServer((socket) => accept(socket, true));
  const implicitAddress = await listen(implicit, config.implicitTlsHost, config.implicitTlsPort);
  return { servers: [...controls, implicit], addresses, implicitAddress };
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { config, storageReachable } = options;
  const metrics = new Metrics();
  observeStorageCalls(recordS3Call);
  const dataPlane = options.dataPlane ?? workerDataPlane(config, options.tls);
  const controlTls = new ServerTls(options.tls, config.tlsEngine);
  let draining = false;
  const context: ServerContext = {
    config,
    tls: controlTls,
    dataPlane,
    // Per binding: one control connection's few sessions, or (address) all of an address's parallel
    // connections (rclone runs 12); enough bindings for every connection allowed.
    tlsSessions: new TlsSessionStore(config.tlsSessionReuse === 'address' ? 32 : 4, Math.max(4096, config.maxConnections)),
    authenticator: options.authenticator,
    loginGuard: loginGuardFor(config, metrics),
    now: () => new Date(),
    transferLog: options.transferLog ?? xferLogger(config.xferlog),
    metrics,
    draining: () => draining,
  };
  const sessions = new SessionRegistry();
  const limits = new ConnectionLimits(config.maxConnections, config.maxConnectionsPerIp);
  const listeners = await startListeners(config, sessionAcceptor(context, limits, sessions));
  const tlsUpdates = new BroadcastChannel(TLS_RELOAD_CHANNEL);
  tlsUpdates.unref();
  const metricsServer = await startMetricsEndpoint(config, metrics, dataPlane, storageReachable, () => draining);

  return {
    address: listeners.addresses[0] as net.AddressInfo,
    addresses: listeners.addresses,
    implicitAddress: listeners.implicitAddress,
    metricsAddress: metricsServer?.address,
    reloadTls(next: TlsMaterial): void {
      controlTls.reload(next);
      tlsUpdates.postMessage(next);
      log.info('TLS certificate reloaded');
    },
    async close(): Promise<void> {
      draining = true;
      for (const server of listeners.servers) server.close();
      await sessions.drain(config.drainTimeoutMs);
      tlsUpdates.close();
      metricsServer?.close();
      metrics.close();
      await dataPlane.close();
    },
  };
}
