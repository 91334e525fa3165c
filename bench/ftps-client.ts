// Streaming FTPS transfers for the bench, on top of the tests' RawFtp control client: explicit
// AUTH TLS, PBSZ 0, PROT P, EPSV, and data connections that resume the control TLS session.
// Unlike RawFtp.transfer, nothing is buffered: uploads write views of the pattern, downloads are
// counted (and optionally checked against the pattern) as they arrive.
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { RawFtp } from '../test/helpers/raw-ftp.ts';
import { drained, matchesPattern, patternSlice } from './pattern.ts';

export { RawFtp };

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
}

export async function login(endpoint: Endpoint): Promise<RawFtp> {
  const ftp = await RawFtp.login(endpoint.host, endpoint.port, endpoint.user, endpoint.password);
  await ftp.expect('TYPE I', 200);
  return ftp;
}

/** Resolves when the socket closed; rejects after `ms`. */
function closedWithin(socket: net.Socket, ms: number, what: string): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${what}: data connection not closed after ${ms} ms`));
    }, ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function finalReply(ftp: RawFtp, what: string, timeoutMs: number): Promise<void> {
  const final = await ftp.read(timeoutMs);
  if (final.code !== 226) throw new Error(`${what}: expected 226, got ${final.text}`);
}

export interface TransferOptions {
  /** Bytes per write on the data connection (uploads). */
  readonly chunk: number;
  /** Check every downloaded byte against the pattern. */
  readonly verify: boolean;
  /** Called with each batch of bytes moved, for progress. */
  readonly onBytes: (bytes: number) => void;
  readonly timeoutMs: number;
  /**
   * Start the data connection's TLS only after the 150 reply. vsftpd accepts the data connection
   * and handshakes only once the command arrived, so a handshake before it would wait forever.
   */
  readonly tlsAfterReply?: boolean;
  /**
   * Client-side rate limit of this transfer, bytes/s (like curl --limit-rate): uploads wait before
   * writing ahead of it, downloads pause the socket (so TCP slows the sender). Unset = full speed.
   */
  readonly rate?: number;
}

/** Milliseconds to wait so that `bytes` moved since `started` (performance.now()) keep to `rate`. */
function paceDelay(started: number, bytes: number, rate: number | undefined): number {
  if (rate === undefined || rate <= 0) return 0;
  return Math.max(0, started + (bytes / rate) * 1000 - performance.now());
}

/** EPSV, the data connection and `command` (which must answer 150); TLS resumes the control session. */
async function openTransfer(ftp: RawFtp, command: string, options: TransferOptions): Promise<net.Socket> {
  const port = await ftp.epsv();
  const data = await ftp.openData(port, { tls: !options.tlsAfterReply });
  const first = await ftp.send(command);
  if (first.code !== 150) {
    data.destroy();
    throw new Error(`${command}: expected 150, got ${first.text}`);
  }
  if (!options.tlsAfterReply) return data;
  const secure = tls.connect({ socket: data, rejectUnauthorized: false, session: ftp.tlsSession });
  secure.on('error', () => undefined);
  await once(secure, 'secureConnect');
  return secure;
}

/** STOR of `size` pattern bytes to `path`. */
export async function store(ftp: RawFtp, path: string, size: number, options: TransferOptions): Promise<void> {
  const data = await openTransfer(ftp, `STOR ${path}`, options);
  let failure: Error | undefined;
  data.on('error', (error: Error) => {
    failure ??= error;
  });
  const closed = closedWithin(data, options.timeoutMs, `STOR ${path}`);
  let offset = 0;
  const started = performance.now();
  // Bounded: each round writes at least one byte, or stops when the connection is gone.
  while (offset < size && !data.destroyed) {
    const wait = paceDelay(started, offset, options.rate);
    if (wait >= 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const chunk = patternSlice(offset, Math.min(options.chunk, size - offset));
    offset += chunk.length;
    options.onBytes(chunk.length);
    if (!data.write(chunk)) {
      await drained(data);
    }
  }
  if (data.destroyed) throw new Error(`STOR ${path}: data connection closed after ${offset} of ${size} bytes${failure ? ` (${failure.message})` : ''}`);
  data.end();
  await closed;
  await finalReply(ftp, `STOR ${path}`, options.timeoutMs);
}

/** RETR of `path`, which must hold `size` pattern bytes. */
export async function retrieve(ftp: RawFtp, path: string, size: number, options: TransferOptions): Promise<void> {
  const data = await openTransfer(ftp, `RETR ${path}`, options);
  let received = 0;
  let corrupt = -1;
  const started = performance.now();
  data.on('data', (chunk: Buffer) => {
    if (options.verify && corrupt < 0 && !matchesPattern(chunk, received)) corrupt = received;
    received += chunk.length;
    options.onBytes(chunk.length);
    const wait = paceDelay(started, received, options.rate);
    if (wait >= 1 && !data.isPaused()) {
      data.pause();
      setTimeout(() => data.resume(), wait);
    }
  });
  const closed = closedWithin(data, options.timeoutMs, `RETR ${path}`);
  await closed;
  await finalReply(ftp, `RETR ${path}`, options.timeoutMs);
  if (received !== size) throw new Error(`RETR ${path}: received ${received} of ${size} bytes`);
  if (corrupt >= 0) throw new Error(`RETR ${path}: bytes differ from the pattern in the chunk at offset ${corrupt}`);
}
