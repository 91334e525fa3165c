// What runs once a data connection is secured and its command known: STOR/APPE into storage,
// RETR from it, and LIST/NLST/MLSD pages as they arrive.
import type * as net from 'node:net';
import type { SecureSocket } from '../tls/server-tls.ts';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import type { StorageDriver } from '../storage/driver.ts';
import { formatPage } from '../listing.ts';
import type { TransferCommand } from './messages.ts';

export type DataConnection = net.Socket | SecureSocket;

/** What a transfer did so far, for its reply and logs also when it fails. */
export interface Progress {
  bytes: number;
  /** The store failed first (a download's source broke), so the reply blames storage, not the client. */
  storageFailed: boolean;
}

/**
 * Fault injection for tests of worker failure: with S3FTPD_FAILPOINT=worker-exit, a worker that
 * receives upload bytes for a key containing `failpoint-worker-exit` ends its thread mid-upload.
 */
function armCrashFailpoint(key: string, body: Readable): void {
  if (process.env.S3FTPD_FAILPOINT !== 'worker-exit' || !key.includes('failpoint-worker-exit')) return;
  const exit = (): never => process.exit(1);
  body.once('data', exit).once('fillable', exit);
}

async function store(socket: DataConnection, command: Extract<TransferCommand, { op: 'store' }>, driver: StorageDriver, signal: AbortSignal, progress: Progress): Promise<void> {
  // The socket is the upload body itself, with no copy in between: it ends only after a TLS
  // close_notify and fails on a reset, a bare TCP end or a cancel, and a failing body makes the
  // driver abort the upload. It may also have ended before the command arrived (an empty file).
  // No 'data' listener here: it would start the socket flowing before the driver reads it.
  armCrashFailpoint(command.key, socket);
  try {
    const result = await driver.write(command.bucket, command.key, socket, signal, { resume: command.resume });
    progress.bytes = result.bytes;
  } catch (error) {
    // For the log and xferlog: what arrived before the failure (none of it was stored).
    progress.bytes = socket.bytesRead;
    throw error;
  }
}

async function retrieve(socket: Writable, command: Extract<TransferCommand, { op: 'retrieve' }>, driver: StorageDriver, signal: AbortSignal, progress: Progress): Promise<void> {
  const source = await driver.read(command.bucket, command.key, command.offset, signal);
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

async function list(socket: Writable, command: Extract<TransferCommand, { op: 'list' }>, driver: StorageDriver, signal: AbortSignal, progress: Progress): Promise<void> {
  const now = new Date(command.now);
  progress.bytes += await writeChunk(socket, formatPage(command.format, command.entries, now));
  const source = command.source;
  if (source && 'root' in source) {
    progress.bytes += await writeChunk(socket, formatPage(command.format, await driver.listBuckets(), now));
  } else if (source) {
    for await (const page of driver.listDirectory(source.bucket, source.prefix)) {
      if (signal.aborted) throw new Error('listing cancelled');
      progress.bytes += await writeChunk(socket, formatPage(command.format, page, now));
    }
  }
  socket.end();
  await once(socket, 'finish');
}

export async function runCommand(socket: DataConnection, command: TransferCommand, driver: StorageDriver, signal: AbortSignal, progress: Progress): Promise<void> {
  switch (command.op) {
    case 'store':
      return store(socket, command, driver, signal, progress);
    case 'retrieve':
      return retrieve(socket, command, driver, signal, progress);
    case 'list':
      return list(socket, command, driver, signal, progress);
  }
}
