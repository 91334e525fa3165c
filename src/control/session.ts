// One control connection: its socket (plain, then TLS after AUTH), line framing, state and replies.
import type * as net from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.ts';
import type { DataPlane, PassiveEndpoint } from '../data/data-plane.ts';
import { StorageError, type StorageDriver, type StorageTarget } from '../storage/driver.ts';
import type { Authenticator } from '../storage/backend.ts';
import { driverFor } from '../storage/index.ts';
import { FtpError, Reply, failureReply, formatReply, type ReplyCode } from './replies.ts';
import type { LoginGuard } from './login-guard.ts';
import type { TlsSessionRecord, TlsSessionStore } from '../tls/sessions.ts';
import { newSessionBinding, addressSessionBinding } from '../tls/context.ts';
import type { SecureSocket, ServerTls } from '../tls/server-tls.ts';
import { stripTelnet } from './telnet.ts';
import { plainAddress } from '../net-address.ts';
import { log } from '../log.ts';
import type { TransferRecord } from '../xferlog.ts';
import type { Metrics } from '../metrics.ts';

export const MAX_LINE_BYTES = 4096;

function isPlainSocket(socket: net.Socket | SecureSocket): socket is net.Socket {
  return !('getProtocol' in socket);
}

export interface ServerContext {
  readonly config: Config;
  /** TLS for control connections, on the chosen engine, with the current certificate. */
  readonly tls: ServerTls;
  readonly dataPlane: DataPlane;
  /** TLS 1.2 sessions of control connections, by binding, for data connections that resume by id. */
  readonly tlsSessions: TlsSessionStore;
  readonly authenticator: Authenticator;
  readonly loginGuard: LoginGuard;
  readonly now: () => Date;
  readonly metrics: Metrics;
  /** True once SIGTERM started the drain: running transfers finish, new ones are refused. */
  readonly draining: () => boolean;
  /** Receives one record per finished transfer (the optional xferlog). */
  readonly transferLog: ((record: TransferRecord) => void) | undefined;
}

export type LineHandler = (session: Session, line: string) => Promise<void>;

export interface TransferState {
  readonly channel: PassiveEndpoint;
  readonly done: Promise<void>;
}

export class Session {
  readonly id = randomUUID().slice(0, 8);
  /** Session id context shared by this control connection's TLS and its data connections. */
  readonly tlsBinding: string;
  readonly server: ServerContext;
  readonly remoteAddress: string;
  readonly localAddress: string;
  #socket: net.Socket | SecureSocket;
  #buffer: Buffer = Buffer.alloc(0);
  #discardingLongLine = false;
  #queue: Promise<void> = Promise.resolve();
  #onLine: LineHandler;
  #closed = false;

  tlsActive = false;
  protection: 'C' | 'P' = 'C';
  pendingUser: string | undefined;
  accessKeyId: string | undefined;
  target: StorageTarget | undefined;
  cwd = '/';
  restOffset = 0;
  renameFrom: string | undefined;
  epsvAll = false;
  passive: PassiveEndpoint | undefined;
  transfer: TransferState | undefined;
  bytesIn = 0;
  bytesOut = 0;
  transfers = 0;

  /** `clientAddress`: the client's address when a load balancer's PROXY header named it. */
  constructor(socket: net.Socket, server: ServerContext, onLine: LineHandler, clientAddress = plainAddress(socket.remoteAddress)) {
    this.#socket = socket;
    this.server = server;
    this.#onLine = onLine;
    this.remoteAddress = clientAddress;
    this.localAddress = plainAddress(socket.localAddress);
    this.tlsBinding = server.config.tlsSessionReuse === 'address' ? addressSessionBinding(this.remoteAddress) : newSessionBinding();
    this.#idleTimer = setTimeout(() => this.#onIdle(), server.config.idleTimeoutMs).unref();
    this.#loginTimer = setTimeout(() => this.#onLoginTimeout(), server.config.loginTimeoutMs).unref();
    this.#attach(socket);
  }

  // Restarted by complete command lines and replies only, so a client trickling one byte at a
  // time cannot keep a connection open.
  readonly #idleTimer: NodeJS.Timeout;
  readonly #loginTimer: NodeJS.Timeout;

  #onLoginTimeout(): void {
    if (this.loggedIn) return;
    this.reply(Reply.ServiceNotAvailable, 'Login timeout; closing control connection.');
    this.close();
  }

  #onIdle(): void {
    // A running transfer keeps the control connection quiet; that is not idleness.
    if (this.transfer) {
      this.#idleTimer.refresh();
      return;
    }
    this.reply(Reply.ServiceNotAvailable, 'Idle timeout; closing control connection.');
    this.close();
  }

  get loggedIn(): boolean {
    return this.target !== undefined;
  }

  get driver(): StorageDriver {
    if (!this.target) throw new Error('not logged in');
    return driverFor(this.target);
  }

  get closed(): boolean {
    return this.#closed;
  }

  readonly #onData = (chunk: Buffer): void => this.#receive(chunk);
  readonly #onError = (error: Error): void => {
    log.info('control connection error', { session: this.id, error: error.message });
  };
  readonly #onSocketClose = (): void => this.#onClose();
  readonly #closeListeners: Array<() => void> = [];

  #attach(socket: net.Socket | SecureSocket): void {
    socket.on('data', this.#onData);
    socket.on('error', this.#onError);
    socket.on('close', this.#onSocketClose);
  }

  #detach(socket: net.Socket | SecureSocket): void {
    socket.off('data', this.#onData);
    socket.off('error', this.#onError);
    socket.off('close', this.#onSocketClose);
  }

  /** Runs once when the control connection has closed, whichever socket carried it. */
  onClosed(listener: () => void): void {
    this.#closeListeners.push(listener);
  }

  #receive(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (let newline = this.#buffer.indexOf(0x0a); newline >= 0; newline = this.#buffer.indexOf(0x0a)) {
      const raw = this.#buffer.subarray(0, newline);
      this.#buffer = this.#buffer.subarray(newline + 1);
      if (this.#discardingLongLine) {
        this.#discardingLongLine = false;
        continue;
      }
      if (raw.length > MAX_LINE_BYTES) {
        this.#enqueue(async () => this.reply(Reply.SyntaxError, 'Command line too long.'));
        continue;
      }
      const line = stripTelnet(raw).toString('utf8').replace(/\r$/, '');
      this.#idleTimer.refresh();
      this.#enqueue(() => this.#onLine(this, line));
      // AUTH TLS hands the socket to TLS; later bytes are the handshake, not commands. A refused
      // AUTH leaves them as commands, so they are read at once rather than when more bytes come.
      if (/^\s*AUTH\b/i.test(line)) {
        this.#socket.pause();
        this.#enqueue(async () => {
          this.#socket.resume();
          if (this.#buffer.length > 0) this.#receive(Buffer.alloc(0));
        });
        break;
      }
    }
    if (this.#buffer.length > MAX_LINE_BYTES) {
      this.#buffer = Buffer.alloc(0);
      this.#discardingLongLine = true;
      this.#enqueue(async () => this.reply(Reply.SyntaxError, 'Command line too long.'));
    }
  }

  #enqueue(work: () => Promise<void>): void {
    this.#queue = this.#queue.then(work).catch((error: unknown) => {
      log.error('command failed', { session: this.id, error: error instanceof Error ? error.stack : String(error) });
      this.reply(Reply.LocalError, 'Local error in processing.');
    });
  }

  /** The code of the last reply sent, for the per-command log line. */
  lastReplyCode: ReplyCode | 0 = 0;

  reply(code: ReplyCode, message: string | readonly string[]): void {
    this.lastReplyCode = code;
    if (this.#closed || this.#socket.destroyed) return;
    this.#idleTimer.refresh();
    this.#socket.write(formatReply(code, message));
  }

  /**
   * Sends the reply for a handler's failure: an FtpError as it is, a storage error through the one
   * mapping in replies.ts (its backend details go to the log). Anything else is a bug: rethrown.
   */
  replyError(error: unknown, context: string): void {
    if (error instanceof FtpError) {
      this.reply(error.code, error.message);
      // 421 means the server is closing this control connection (RFC 959).
      if (error.code === Reply.ServiceNotAvailable) this.close();
      return;
    }
    if (!(error instanceof StorageError)) throw error;
    log.info('storage error', {
      session: this.id,
      context,
      kind: error.kind,
      code: error.backendCode,
      requestId: error.requestId,
      error: error.message,
    });
    const [code, message] = failureReply(error.kind);
    this.reply(code, message);
  }

  /** Replaces the plain socket with TLS; called right after the 234 reply is written. */
  upgradeToTls(): void {
    const plain = this.#socket;
    // AUTH refuses a second TLS layer, so this is the TCP socket itself.
    if (this.tlsActive || !isPlainSocket(plain)) throw new Error('control connection is already TLS');
    this.#detach(plain);
    // Stop the plain socket flowing: bytes already read (a ClientHello that came with a PROXY
    // header) would otherwise be emitted to no listener before TLS takes them from the buffer.
    plain.pause();
    const rest = this.#buffer;
    this.#buffer = Buffer.alloc(0);
    if (rest.length > 0) plain.unshift(rest);
    // Only TLS 1.2 sessions are resumed by id; OpenSSL also reports every TLS 1.3 ticket it issues.
    const onNew = (record: TlsSessionRecord): void => {
      if (secure.getProtocol() === 'TLSv1.2') this.server.tlsSessions.record(this.tlsBinding, record);
    };
    const secure = this.server.tls.control(plain, this.tlsBinding, onNew);
    this.#socket = secure;
    this.tlsActive = true;
    this.#attach(secure);
    secure.on('secure', () => log.info('control TLS established', { session: this.id, protocol: secure.getProtocol() ?? '' }));
  }

  get tlsProtocol(): string | undefined {
    return this.tlsActive ? ((this.#socket as SecureSocket).getProtocol() ?? undefined) : undefined;
  }

  /** Ends the control connection after what was written has been sent. */
  close(): void {
    if (this.#closed) return;
    this.#socket.end();
    this.#socket.destroySoon();
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#loginTimer);
    this.passive?.cancel();
    this.transfer?.channel.cancel();
    for (const listener of this.#closeListeners.splice(0)) listener();
    // With --tls-session-reuse address, other connections from the address share the binding.
    if (this.server.config.tlsSessionReuse !== 'address') this.server.tlsSessions.forget(this.tlsBinding);
    log.info('session closed', { session: this.id, remote: this.remoteAddress, user: this.accessKeyId });
  }
}
