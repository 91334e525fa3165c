// Worker entry: one task per PASV/EPSV. Listens on a passive port, accepts one connection from the
// control connection's address, does TLS (resuming the control session), then runs one transfer.
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import { workerData, BroadcastChannel } from 'node:worker_threads';
import { createServerContext, wrapServerSocket } from '../tls/context.ts';
import { TLS_RELOAD_CHANNEL, type TlsMaterial } from '../tls/material.ts';
import { wrapWithEofCheck } from '../tls/eof.ts';
import { setLogLevel, type LogLevel } from '../log.ts';
import { driverFor } from '../storage/index.ts';
import { joinBudget, type BudgetShare } from '../storage/part-buffers.ts';
import { StorageError, type StorageErrorKind } from '../storage/driver.ts';
import { formatPage } from '../listing.ts';
import { plainAddress } from '../net-address.ts';
import type { PassiveTask, PassiveTaskResult, ToMain, ToWorker, TransferCommand, RejectReason } from './messages.ts';

const { tls: initialMaterial, logLevel, budget } = workerData as { tls: TlsMaterial; logLevel: LogLevel; budget: BudgetShare };
setLogLevel(logLevel);
joinBudget(budget);
let material = initialMaterial;
/** Contexts by control connection binding; a control connection usually opens many data connections. */
const contexts = new Map<string, tls.SecureContext>();
const MAX_CACHED_CONTEXTS = 256;

function contextFor(binding: string): tls.SecureContext {
  let context = contexts.get(binding);
  if (context) {
    contexts.delete(binding);
  } else {
    context = createServerContext(material, binding);
    if (contexts.size >= MAX_CACHED_CONTEXTS) contexts.delete(contexts.keys().next().value ?? '');
  }
  contexts.set(binding, context);
  return context;
}

// SIGHUP on the main thread reloads the certificate; new data connections use the new one.
const tlsUpdates = new BroadcastChannel(TLS_RELOAD_CHANNEL);
tlsUpdates.onmessage = (event: unknown): void => {
  material = (event as MessageEvent<TlsMaterial>).data;
  contexts.clear();
};
tlsUpdates.unref();
const MAX_BIND_ATTEMPTS = 64;

class Rejection extends Error {
  readonly reason: RejectReason;
  constructor(reason: RejectReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

async function listenInRange(task: PassiveTask): Promise<{ server: net.Server; port: number }> {
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
      if (code !== 'EADDRINUSE' && code !== 'EACCES') throw error;
    }
  }
  throw new Rejection('no-port', 'no free passive port');
}

type DataConnection = net.Socket | tls.TLSSocket;

/** Resolves with the first connection from the control peer; others are dropped untouched. */
function acceptFromPeer(server: net.Server, task: PassiveTask, cancelled: Promise<void>): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Rejection('accept-timeout', 'no data connection in time')), task.acceptTimeoutMs);
    const finish = (result: Error | net.Socket): void => {
      clearTimeout(timer);
      server.off('connection', onConnection);
      server.close();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onConnection = (socket: net.Socket): void => {
      if (plainAddress(socket.remoteAddress) !== plainAddress(task.controlAddress)) {
        socket.destroy();
        return;
      }
      // Set on the TCP socket itself: through the TLS wrapper setNoDelay would not reach it.
      socket.setNoDelay(true);
      finish(socket);
    };
    server.on('connection', onConnection);
    void cancelled.then(() => finish(new Rejection('closed', 'cancelled')));
  });
}

/**
 * Puts TLS on the data connection. Native TLS is the cheapest, but Node ends a native TLS socket
 * the same way after a close_notify and after a bare TCP FIN, so an upload needs the checking
 * duplex of tls/eof.ts. Clients that start TLS only after the 150 reply (ftplib, lftp) send the
 * command first: downloads and listings then get native TLS. A client whose ClientHello comes
 * first (curl, basic-ftp) waits for the handshake before it sends the command, so it is wrapped at
 * once with the checking duplex, which serves every command. Bytes that arrived are put back for
 * TLS to read.
 */
async function secureWhenKnown(raw: net.Socket, commandArrived: Promise<TransferCommand | undefined>, task: PassiveTask): Promise<tls.TLSSocket> {
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
  const first = await Promise.race([firstBytes, commandArrived]);
  stopWatching();
  const context = contextFor(task.tlsBinding);
  const sessions = { known: task.tlsSessions };
  if (first === 'bytes' || first === undefined || first.op === 'store') return wrapWithEofCheck(raw, context, sessions);
  return wrapServerSocket(raw, context, sessions);
}

async function handshake(socket: tls.TLSSocket, task: PassiveTask): Promise<void> {
  const timer = setTimeout(() => socket.destroy(new Error('TLS handshake timed out')), task.acceptTimeoutMs);
  try {
    await once(socket, 'secure');
  } catch (error) {
    throw new Rejection('tls-failed', error instanceof Error ? error.message : String(error));
  } finally {
    clearTimeout(timer);
  }
  if (task.requireSessionReuse && !socket.isSessionReused()) {
    throw new Rejection('session-not-reused', 'data connection did not resume the TLS session of the control connection');
  }
}

/**
 * Fault injection for tests of worker failure: with S3FTPD_FAILPOINT=worker-exit, a worker that
 * receives upload bytes for a key containing `failpoint-worker-exit` ends its thread mid-upload.
 */
function armCrashFailpoint(key: string, body: Readable): void {
  if (process.env.S3FTPD_FAILPOINT !== 'worker-exit' || !key.includes('failpoint-worker-exit')) return;
  body.once('data', () => process.exit(1));
}

/** What a transfer did so far, for its reply and logs also when it fails. */
interface Progress {
  bytes: number;
  /** The store failed first (a download's source broke), so the reply blames storage, not the client. */
  storageFailed: boolean;
}

async function store(socket: DataConnection, command: Extract<TransferCommand, { op: 'store' }>, task: PassiveTask, signal: AbortSignal, progress: Progress): Promise<void> {
  // The socket is the upload body itself, with no copy in between: it ends only after a TLS
  // close_notify and fails on a reset, a bare TCP end or a cancel, and a failing body makes the
  // driver abort the upload. It may also have ended before the command arrived (an empty file).
  // No 'data' listener here: it would start the socket flowing before the driver reads it.
  armCrashFailpoint(command.key, socket);
  try {
    const result = await driverFor(task.target).write(command.bucket, command.key, socket, signal);
    progress.bytes = result.bytes;
  } catch (error) {
    // For the log and xferlog: what arrived before the failure (none of it was stored).
    progress.bytes = socket.bytesRead;
    throw error;
  }
}

async function retrieve(socket: Writable, command: Extract<TransferCommand, { op: 'retrieve' }>, task: PassiveTask, signal: AbortSignal, progress: Progress): Promise<void> {
  const source = await driverFor(task.target).read(command.bucket, command.key, command.offset, signal);
  source.on('data', (chunk: Buffer) => {
    progress.bytes += chunk.length;
  });
  // Registered before pipeline's own listener: the source failed before the socket was destroyed.
  source.once('error', () => {
    if (!socket.destroyed) progress.storageFailed = true;
  });
  await pipeline(source, socket, { signal });
}

async function writeChunk(socket: Writable, text: string): Promise<number> {
  if (text === '') return 0;
  const buffer = Buffer.from(text, 'utf8');
  if (!socket.write(buffer)) await once(socket, 'drain');
  return buffer.length;
}

async function list(socket: Writable, command: Extract<TransferCommand, { op: 'list' }>, task: PassiveTask, signal: AbortSignal, progress: Progress): Promise<void> {
  const now = new Date(command.now);
  progress.bytes += await writeChunk(socket, formatPage(command.format, command.entries, now));
  const source = command.source;
  if (source && 'root' in source) {
    progress.bytes += await writeChunk(socket, formatPage(command.format, await driverFor(task.target).listBuckets(), now));
  } else if (source) {
    for await (const page of driverFor(task.target).listDirectory(source.bucket, source.prefix)) {
      if (signal.aborted) throw new Error('listing cancelled');
      progress.bytes += await writeChunk(socket, formatPage(command.format, page, now));
    }
  }
  socket.end();
  await once(socket, 'finish');
}

/**
 * Whom a failed transfer blames: the storage when it failed first (a download's source broke, or
 * the driver reported an error while the connection was still whole), else the data connection.
 * A TLS end without close_notify arrives as a socket error, so it counts as a broken connection.
 */
function failureKind(error: unknown, progress: Progress, connectionBroke: boolean): StorageErrorKind | 'Connection' {
  if (progress.storageFailed) return error instanceof StorageError ? error.kind : 'Unavailable';
  if (connectionBroke) return 'Connection';
  return error instanceof StorageError ? error.kind : 'Connection';
}

async function run(socket: DataConnection, command: TransferCommand, task: PassiveTask, signal: AbortSignal, progress: Progress): Promise<void> {
  switch (command.op) {
    case 'store':
      return store(socket, command, task, signal, progress);
    case 'retrieve':
      return retrieve(socket, command, task, signal, progress);
    case 'list':
      return list(socket, command, task, signal, progress);
  }
}

export default async function passiveTransfer(task: PassiveTask): Promise<PassiveTaskResult> {
  let final: PassiveTaskResult['final'] = { type: 'rejected', reason: 'closed', message: 'task ended' };
  const post = (message: ToMain): void => {
    if (message.type === 'done' || message.type === 'failed' || message.type === 'rejected') final = message;
    task.port.postMessage(message);
  };
  const abort = new AbortController();
  let socket: net.Socket | tls.TLSSocket | undefined;
  let resolveCommand: (command: TransferCommand | undefined) => void = () => undefined;
  const commandArrived = new Promise<TransferCommand | undefined>((resolve) => {
    resolveCommand = resolve;
  });
  let resolveCancelled: () => void = () => undefined;
  const cancelled = new Promise<void>((resolve) => {
    resolveCancelled = resolve;
  });
  task.port.on('message', (message: ToWorker) => {
    if (message.type === 'transfer') resolveCommand(message.command);
    else {
      abort.abort();
      socket?.destroy();
      resolveCommand(undefined);
      resolveCancelled();
    }
  });
  const progress: Progress = { bytes: 0, storageFailed: false };
  // Set when the data connection failed on its own (reset, premature close) rather than S3.
  let connectionBroke = false;
  try {
    const { server, port } = await listenInRange(task);
    post({ type: 'listening', port });
    const raw = await acceptFromPeer(server, task, cancelled);
    socket = raw;
    const accepted = task.tls ? await secureWhenKnown(raw, commandArrived, task) : raw;
    socket = accepted;
    let ended = false;
    accepted.on('end', () => {
      ended = true;
    });
    accepted.on('error', () => {
      connectionBroke = true;
    });
    accepted.on('close', () => {
      if (!ended && !accepted.writableFinished) {
        connectionBroke = true;
        abort.abort();
      }
    });
    if (abort.signal.aborted) throw new Rejection('closed', 'cancelled');
    // The handshake is watched from the moment of accept (curl and basic-ftp complete it before
    // sending the command) but awaited only after the 150 reply: ftplib and lftp start TLS on the
    // data connection only once they have seen 150.
    const secured = task.tls ? handshake(accepted as tls.TLSSocket, task) : Promise.resolve();
    secured.catch(() => undefined);
    post({ type: 'connected' });
    const command = await commandArrived;
    if (!command) throw new Rejection('closed', 'cancelled');
    post({ type: 'started' });
    await secured;
    accepted.setTimeout(task.stallTimeoutMs, () => {
      // Nothing moved for the stall timeout, on the data connection or (backpressure) in S3.
      abort.abort();
      accepted.destroy(new Error('data connection stalled'));
    });
    try {
      await run(accepted, command, task, abort.signal, progress);
    } catch (error) {
      post({
        type: 'failed',
        bytes: progress.bytes,
        kind: failureKind(error, progress, connectionBroke || abort.signal.aborted),
        message: error instanceof Error ? error.message : String(error),
      });
      return { final };
    }
    if (!socket.writableEnded) socket.end();
    post({ type: 'done', bytes: progress.bytes });
    return { final };
  } catch (error) {
    if (error instanceof Rejection) post({ type: 'rejected', reason: error.reason, message: error.message });
    else post({ type: 'rejected', reason: 'tls-failed', message: error instanceof Error ? error.message : String(error) });
    return { final };
  } finally {
    socket?.destroySoon();
    // The port stays open: the main thread closes it once the last message arrived.
    task.port.unref();
  }
}
