// One passive transfer's life, phase by phase: listen → accept → secure → await the command →
// run → report. Each phase that can fail names its failure (messages.ts ConnectionFailure), so the
// control connection's reply says what went wrong. Runs in a data worker (worker.ts) or, for the
// in-process test harness, on the calling thread (inline-plane.ts).
import * as net from 'node:net';
import { once } from 'node:events';
import type { ServerTls, SecureSocket } from '../tls/server-tls.ts';
import { driverFor } from '../storage/index.ts';
import { StorageError } from '../storage/driver.ts';
import { plainAddress } from '../net-address.ts';
import { clientAddressOf, parseCidrList } from '../net/proxy-protocol.ts';
import { runCommand, type DataConnection, type Progress } from './operations.ts';
import type { ConnectionFailure, PassiveTask, TaskResult, ToMain, ToWorker, TransferCommand, TransferFailure } from './messages.ts';

/** What the thread running a task provides: TLS for its data connections. */
export interface TaskEnvironment {
  readonly tls: ServerTls;
}

/** A phase failed for a reason of its own (not storage's). */
export class PhaseFailure extends Error {
  readonly failure: ConnectionFailure;
  constructor(failure: ConnectionFailure, message: string) {
    super(message);
    this.name = 'PhaseFailure';
    this.failure = failure;
  }
}

const MAX_BIND_ATTEMPTS = 64;

/** The main thread's side of the task: the command when it comes, and cancellation. */
class ControlLink {
  readonly abort = new AbortController();
  readonly command: Promise<TransferCommand | undefined>;
  readonly cancelled: Promise<void>;
  /** The connection to destroy on cancel, once there is one. */
  socket: DataConnection | undefined;

  constructor(port: PassiveTask['port']) {
    let resolveCommand: (command: TransferCommand | undefined) => void = () => undefined;
    let resolveCancelled: () => void = () => undefined;
    this.command = new Promise((resolve) => {
      resolveCommand = resolve;
    });
    this.cancelled = new Promise((resolve) => {
      resolveCancelled = resolve;
    });
    port.on('message', (message: ToWorker) => {
      if (message.type === 'transfer') {
        resolveCommand(message.command);
        return;
      }
      this.abort.abort();
      this.socket?.destroy();
      resolveCommand(undefined);
      resolveCancelled();
    });
  }
}

/** Phase 1: a port of the range that is free now, bound at once (no probing, so no race). */
export async function listen(task: PassiveTask): Promise<{ server: net.Server; port: number }> {
  const size = task.high - task.low + 1;
  for (let i = 0; i < Math.min(size, MAX_BIND_ATTEMPTS); i += 1) {
    const port = task.low + ((task.firstPort - task.low + i) % size);
    // Half-open: after the client's FIN, TLS may still send its close_notify and we end the socket.
    const server = net.createServer({ allowHalfOpen: true });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host: task.bindAddress, exclusive: true, backlog: 8 }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      return { server, port };
    } catch (error) {
      server.close();
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE' && code !== 'EACCES') throw new PhaseFailure('no-port', `cannot listen on ${task.bindAddress}: ${code ?? String(error)}`);
    }
  }
  throw new PhaseFailure('no-port', 'no free passive port');
}

/**
 * Phase 2: the first connection from the control connection's client; others are dropped
 * untouched. Behind a trusted load balancer the client is the one its PROXY header names, so a
 * data connection from another client through the same balancer is dropped too (port theft).
 */
function accept(server: net.Server, task: PassiveTask, link: ControlLink): Promise<net.Socket> {
  const balancers = parseCidrList(task.proxyProtocolFrom);
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => finish(new PhaseFailure('accept-timeout', 'no data connection in time')), task.acceptTimeoutMs);
    const finish = (result: Error | net.Socket): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      server.off('connection', onConnection);
      server.close();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onConnection = (socket: net.Socket): void => {
      socket.on('error', () => undefined);
      clientAddressOf(socket, plainAddress(socket.remoteAddress), balancers).then(
        (client) => {
          if (settled || client !== plainAddress(task.controlAddress)) {
            socket.destroy();
            return;
          }
          // Set on the TCP socket itself: through the TLS wrapper setNoDelay would not reach it.
          socket.setNoDelay(true);
          finish(socket);
        },
        () => socket.destroy(),
      );
    };
    server.on('connection', onConnection);
    void link.cancelled.then(() => finish(new PhaseFailure('cancelled', 'cancelled')));
  });
}

/**
 * Phase 3: TLS on the data connection. The native engine tells a close_notify from a bare TCP end
 * by itself. On Node's TLS, which ends the same way after both, an upload needs the checking
 * duplex of tls/eof.ts: clients that start TLS only after the 150 reply (ftplib, lftp) send the
 * command first, so downloads and listings then get Node's TLS directly; a client whose
 * ClientHello comes first (curl, basic-ftp) waits for the handshake before it sends the command,
 * so it is wrapped at once with the checking duplex, which serves every command. Bytes that
 * arrived are put back for TLS to read.
 */
async function secure(raw: net.Socket, task: PassiveTask, env: TaskEnvironment, link: ControlLink): Promise<SecureSocket> {
  let stopWatching = (): void => undefined;
  const firstBytes = new Promise<'bytes'>((resolve) => {
    const onData = (chunk: Buffer): void => {
      raw.pause();
      raw.unshift(chunk);
      resolve('bytes');
    };
    const onEnd = (): void => resolve('bytes');
    raw.once('data', onData).once('end', onEnd).once('close', onEnd);
    stopWatching = () => {
      raw.off('data', onData).off('end', onEnd).off('close', onEnd);
    };
  });
  const first = await Promise.race([firstBytes, link.command]);
  stopWatching();
  // Bytes already buffered (after a PROXY header) must wait for TLS, not flow to no listener.
  raw.pause();
  try {
    const checkEof = first === 'bytes' || first === undefined || first.op === 'store';
    return env.tls.data(raw, { binding: task.tlsBinding, sessions: task.tlsSessions, checkEof });
  } catch (error) {
    throw new PhaseFailure('tls-failed', error instanceof Error ? error.message : String(error));
  }
}

/** The end of phase 3, awaited only after the 150 reply (ftplib and lftp start TLS after it). */
async function handshake(socket: SecureSocket, task: PassiveTask): Promise<void> {
  const timer = setTimeout(() => socket.destroy(new Error('TLS handshake timed out')), task.acceptTimeoutMs);
  try {
    await once(socket, 'secure');
  } catch (error) {
    throw new PhaseFailure('tls-failed', error instanceof Error ? error.message : String(error));
  } finally {
    clearTimeout(timer);
  }
  if (task.requireSessionReuse && !socket.isSessionReused()) {
    throw new PhaseFailure('session-not-reused', 'data connection did not resume the TLS session of the control connection');
  }
}

/** Whether the data connection broke on its own (reset, premature close) rather than storage. */
function watchConnection(socket: DataConnection, link: ControlLink): { readonly broke: () => boolean } {
  let ended = false;
  let broke = false;
  socket.on('end', () => {
    ended = true;
  });
  socket.on('error', () => {
    broke = true;
  });
  socket.on('close', () => {
    if (!ended && !socket.writableFinished) {
      broke = true;
      link.abort.abort();
    }
  });
  return { broke: () => broke };
}

/** Phase 4: the command from the control connection, or undefined when it was cancelled. */
async function awaitCommand(link: ControlLink): Promise<TransferCommand> {
  const command = await link.command;
  if (!command) throw new PhaseFailure('cancelled', 'cancelled');
  return command;
}

/**
 * Whom a failed transfer blames: the storage when it failed first (a download's source broke, or
 * the driver reported an error while the connection was still whole), else the data connection.
 * A TLS end without close_notify arrives as a socket error, so it counts as a broken connection.
 */
function blame(error: unknown, progress: Progress, connectionBroke: boolean): TransferFailure {
  if (error instanceof PhaseFailure) return error.failure;
  if (progress.storageFailed) return error instanceof StorageError ? error.kind : 'Unavailable';
  if (connectionBroke) return 'connection-lost';
  return error instanceof StorageError ? error.kind : 'connection-lost';
}

/** Phase 5: the command itself, with a stall timeout on the data connection. */
async function run(socket: DataConnection, command: TransferCommand, task: PassiveTask, link: ControlLink, progress: Progress): Promise<void> {
  socket.setTimeout(task.stallTimeoutMs, () => {
    // Nothing moved for the stall timeout, on the data connection or (backpressure) in S3.
    link.abort.abort();
    socket.destroy(new Error('data connection stalled'));
  });
  await runCommand(socket, command, driverFor(task.target), link.abort.signal, progress);
  if (!socket.writableEnded) socket.end();
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function runPassiveTask(task: PassiveTask, env: TaskEnvironment): Promise<TaskResult> {
  const post = (message: ToMain): void => task.port.postMessage(message);
  const link = new ControlLink(task.port);
  const progress: Progress = { bytes: 0, storageFailed: false };
  let started = false;
  let connection: { readonly broke: () => boolean } | undefined;
  try {
    const { server, port } = await listen(task);
    post({ type: 'listening', port });
    const raw = await accept(server, task, link);
    link.socket = raw;
    const socket = task.tls ? await secure(raw, task, env, link) : raw;
    link.socket = socket;
    connection = watchConnection(socket, link);
    if (link.abort.signal.aborted) throw new PhaseFailure('cancelled', 'cancelled');
    // Watched from the moment of accept (curl and basic-ftp complete it before sending the
    // command), awaited after the 150 reply.
    const secured = task.tls ? handshake(socket as SecureSocket, task) : Promise.resolve();
    secured.catch(() => undefined);
    const command = await awaitCommand(link);
    post({ type: 'started' });
    started = true;
    await secured;
    await run(socket, command, task, link, progress);
    return { type: 'done', bytes: progress.bytes, started };
  } catch (error) {
    const broke = connection?.broke() === true || link.abort.signal.aborted;
    const failure = error instanceof PhaseFailure || started ? blame(error, progress, broke) : 'internal';
    return { type: 'failed', failure, message: errorMessage(error), bytes: progress.bytes, started };
  } finally {
    link.socket?.destroySoon();
    // The port stays open: the main thread closes it once the result arrived.
    task.port.unref();
  }
}
