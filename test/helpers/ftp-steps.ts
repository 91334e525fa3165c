// Small steps on top of RawFtp shared by the integration tests: gateways, sessions and buckets that
// clean up after themselves, transfers kept open for ABOR/QUIT, paced writes, listing-line parsers.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { RawFtp, type FtpReply } from './raw-ftp.ts';
import { startGateway, uniqueBucket, type BackendName, type Gateway, type GatewayOptions } from './gateway.ts';

/** The part of a tap test these helpers need. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** startGateway, stopped (SIGKILL after 5 s) when the test ends. */
export async function gatewayFor(t: Teardown, backend: BackendName, options: GatewayOptions = {}): Promise<Gateway> {
  const gw = await startGateway(backend, options);
  t.teardown(() => gw.stop());
  return gw;
}

/** A logged-in session (AUTH TLS, PBSZ 0, PROT P) that quits when the test ends. */
export async function session(t: Teardown, gw: Gateway): Promise<RawFtp> {
  const ftp = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
  t.teardown(() => ftp.quit());
  return ftp;
}

/** A new bucket created directly in the store and removed with everything in it at the end. */
export async function newBucket(t: Teardown, gw: Gateway, label: string): Promise<string> {
  const name = uniqueBucket(label);
  await gw.probe.createBucket(name);
  t.teardown(() => gw.probe.removeBucket(name));
  return name;
}

/** STOR through the gateway; returns the final reply code (or the first when it was not 150). */
export async function stor(ftp: RawFtp, path: string, body: Buffer | string): Promise<number> {
  const result = await ftp.transfer(`STOR ${path}`, { upload: Buffer.from(body) });
  return result.final?.code ?? result.first.code;
}

export interface OpenTransfer {
  readonly first: FtpReply;
  readonly data: net.Socket;
  /** Resolves with everything received once the data connection closes. */
  readonly received: Promise<Buffer>;
}

/** EPSV, opens the data connection and sends the command, leaving the transfer running. */
export async function openTransfer(ftp: RawFtp, command: string, options: { read?: boolean } = {}): Promise<OpenTransfer> {
  const port = await ftp.epsv();
  const data = await ftp.openData(port);
  const chunks: Buffer[] = [];
  // Not events.once: an 'error' (a reset after ABOR) must not reject, only 'close' matters.
  const closed = new Promise<Buffer>((resolve) => data.once('close', () => resolve(Buffer.concat(chunks))));
  if (options.read !== false) data.on('data', (chunk: Buffer) => chunks.push(chunk));
  const first = await ftp.send(command);
  return { first, data, received: closed };
}

/** A TLS data connection together with the TCP socket under it, for cuts below TLS (RST, FIN). */
export interface DataPair {
  readonly raw: net.Socket;
  readonly secure: tls.TLSSocket;
}

/** Like RawFtp.openData (TLS resuming the control session), but also hands back the TCP socket. */
export async function openDataPair(ftp: RawFtp, port: number): Promise<DataPair> {
  const raw = net.connect({ host: ftp.host, port, noDelay: true });
  await once(raw, 'connect');
  raw.on('error', () => undefined);
  const secure = tls.connect({ socket: raw, rejectUnauthorized: false, session: ftp.tlsSession });
  secure.on('error', () => undefined);
  await once(secure, 'secureConnect');
  return { raw, secure };
}

/**
 * Writes to a socket and waits until it drained or closed. A reset counts as closed and does not
 * reject: tests that cut connections on purpose check the outcome in replies and the store instead.
 */
export async function writeAll(socket: net.Socket, body: Buffer): Promise<void> {
  if (socket.destroyed) return;
  if (socket.write(body)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

export interface Pacing {
  /** How long the whole body takes to send: one slice every `spreadOverMs / slices` ms. */
  readonly spreadOverMs: number;
  readonly slices?: number;
  /** End the stream (close_notify on TLS) after the last slice; false leaves it open, as a stalled client would. */
  readonly end?: boolean;
}

/**
 * Writes `body` slowly, so that a transfer is still running while the test signals or samples the
 * gateway. Resolves true once every slice is written, false when the connection closed first.
 */
export async function writePaced(data: net.Socket, body: Buffer, { spreadOverMs, slices = 20, end = true }: Pacing): Promise<boolean> {
  const size = Math.ceil(body.length / slices);
  for (let i = 0; i < slices; i += 1) {
    if (data.destroyed) return false;
    await writeAll(data, body.subarray(i * size, (i + 1) * size));
    await sleep(spreadOverMs / slices);
  }
  if (data.destroyed) return false;
  if (end) data.end();
  return true;
}

/** Polls `check` until it is true or `ms` passed; returns the last answer. */
export async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 1000; i += 1) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return false;
}

export interface ListLine {
  readonly type: 'dir' | 'file';
  readonly size: number;
  readonly month: string;
  readonly day: number;
  /** `HH:MM` for entries under six months old, the year otherwise. */
  readonly timeOrYear: string;
  readonly name: string;
}

const LIST_LINE =
  /^([d-])rw[x-]r[w-][x-]r[w-][x-] +\d+ +\S+ +\S+ +(\d+) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) +(\d\d:\d\d|\d{4}) (.+)$/;

/** Parses an `ls -l` line as LIST sends it; undefined when it does not have that form. */
export function parseListLine(line: string): ListLine | undefined {
  const m = LIST_LINE.exec(line);
  if (!m) return undefined;
  return {
    type: m[1] === 'd' ? 'dir' : 'file',
    size: Number(m[2]),
    month: m[3] ?? '',
    day: Number(m[4]),
    timeOrYear: m[5] ?? '',
    name: m[6] ?? '',
  };
}

/** Parses `fact=value;...; name` (MLSD lines, MLST lines without their leading space). */
export function parseFacts(line: string): { facts: Record<string, string>; name: string } | undefined {
  const space = line.indexOf('; ');
  if (space < 0) return undefined;
  const facts: Record<string, string> = {};
  for (const pair of line.slice(0, space).split(';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) return undefined;
    facts[pair.slice(0, eq).toLowerCase()] = pair.slice(eq + 1);
  }
  return { facts, name: line.slice(space + 2) };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Parses YYYYMMDDHHMMSS (UTC) as MDTM and the `modify` fact give it. */
export function parseTimeval(value: string): Date | undefined {
  const m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s));
}

/** What a LIST line should show for a recent entry modified at `date` (UTC). */
export function listStamp(date: Date): { month: string; day: number; timeOrYear: string } {
  const two = (n: number): string => String(n).padStart(2, '0');
  return {
    month: MONTHS[date.getUTCMonth()] ?? '',
    day: date.getUTCDate(),
    timeOrYear: `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}`,
  };
}

/** The assertions the checks below make, on top of Teardown. */
export interface Asserts extends Teardown {
  ok(value: unknown, message: string): unknown;
  equal(found: unknown, wanted: unknown, message: string): unknown;
}

/** A login on a new connection while the storage is unreachable: PASS is answered 421 within 5 s. */
export async function loginWhileStorageDown(t: Asserts, gw: Pick<Gateway, 'host' | 'port'>, user: string, password: string, label: string): Promise<void> {
  const { client } = await RawFtp.connect(gw.host, gw.port);
  t.teardown(() => client.destroy());
  await client.expect('AUTH TLS', 234);
  await client.upgrade();
  await client.expect(`USER ${user}`, 331);
  const started = Date.now();
  client.writeRaw(`PASS ${password}\r\n`);
  const reply = await client.read(10_000).catch(() => ({ code: -1, text: 'no reply within 10 s' }));
  const ms = Date.now() - started;
  t.ok(ms < 5000, `${label}: PASS answered in ${ms} ms`);
  t.equal(reply.code, 421, `${label}: PASS answers 421 (storage unreachable), got ${reply.text}`);
}
