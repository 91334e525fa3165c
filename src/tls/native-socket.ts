// A data connection's TLS on the native engine (native-engine.ts) over a plain TCP socket: a Duplex
// of plaintext that ends only after the peer's close_notify and fails on a bare TCP end, for every
// command and every client order, without the JS duplex and Node's JSStreamSocket of eof.ts.
import type * as net from 'node:net';
import { Duplex } from 'node:stream';
import { EngineState, createNativeEngine, type NativeContext, type NativeEngine } from './native-engine.ts';
import type { TlsSessionRecord } from './sessions.ts';

/** TLS adds at most this much to a record of 16 KiB (header, nonce, tag, content type). */
const RECORD_OVERHEAD = 64;
const RECORD_PLAINTEXT = 16_384;
/** While filling, TCP is paused once this much ciphertext waits, and resumed below a quarter of it. */
const FILL_STASH_BYTES = 1024 * 1024;
/** What a reader of a connection cut without close_notify fails with (a truncated upload). */
const CUT_WITHOUT_CLOSE_NOTIFY = 'data connection ended without TLS close_notify';
/** Output buffers are at least this large, and one is kept for reuse between writes. */
const OUTPUT_BUFFER_BYTES = 256 * 1024;
/** A control connection writes a reply at a time: small buffers, none kept while idle. */
const CONTROL_OUTPUT_BYTES = 2048;

export interface NativeSocketOptions {
  /**
   * A control connection: ends its side when the peer's ends (as Node's TLSSocket), keeps no
   * buffers while idle, and reports the sessions it makes to `onNewSession`.
   */
  readonly control?: boolean;
  readonly onNewSession?: (record: TlsSessionRecord) => void;
}

export class NativeTlsSocket extends Duplex {
  readonly #raw: net.Socket;
  readonly #engine: NativeEngine;
  #secure = false;
  #closeNotify = false;
  /** Our close_notify is on its way: the peer may now close without its own. */
  #finishing = false;
  /** Writes that came before the handshake finished. */
  #waitingForHandshake: Array<() => void> = [];
  /** Plaintext bytes received, as TLSSocket counts them (logs of cut uploads). */
  #plaintextRead = 0;
  /** Filling the reader's buffers (FillableBody in storage/driver.ts) instead of pushing Buffers. */
  #filling = false;
  /** Ciphertext received while filling, not yet given to the engine. */
  #stash: Buffer[] = [];
  #stashBytes = 0;
  /** Plaintext pushed before filling began, handed out first. */
  #carry: Buffer | undefined;
  #tcpEnded = false;
  /** The output buffer not in flight, reused by the next write. */
  #spare: Buffer | undefined;

  readonly #control: boolean;
  readonly #onNewSession: ((record: TlsSessionRecord) => void) | undefined;

  constructor(raw: net.Socket, context: NativeContext, sessionIdContext: string, known: readonly TlsSessionRecord[] = [], options: NativeSocketOptions = {}) {
    // A data connection is half-open like the TCP socket under it: the caller ends our side (run()
    // in passive-task). A control connection ends with its peer.
    const control = options.control === true;
    const highWaterMark = control ? 16 * 1024 : 256 * 1024;
    super({ allowHalfOpen: !control, readableHighWaterMark: highWaterMark, writableHighWaterMark: highWaterMark });
    this.#control = control;
    this.#onNewSession = options.onNewSession;
    this.#raw = raw;
    this.#engine = createNativeEngine(context, sessionIdContext, known, control);
    raw.on('data', (chunk: Buffer) => this.#onCiphertext(chunk));
    raw.on('end', () => this.#onTcpEnd());
    raw.on('error', (error) => this.destroy(error));
    raw.on('close', () => {
      if (!this.destroyed) this.destroy(this.#closeNotify || this.#finishing || this.writableFinished ? undefined : new Error('data connection reset'));
    });
    // The handshake needs the socket flowing whether or not anyone reads plaintext yet.
    raw.resume();
  }

  isSessionReused(): boolean {
    return (this.#engine.state() & EngineState.sessionReused) !== 0;
  }

  getProtocol(): string | null {
    return this.destroyed ? null : this.#engine.protocol();
  }

  get bytesRead(): number {
    return this.#plaintextRead;
  }

  /** Idle timeout of the connection, either way, as on net.Socket. */
  setTimeout(ms: number, onTimeout?: () => void): this {
    this.#raw.setTimeout(ms);
    if (onTimeout) this.#raw.once('timeout', onTimeout);
    return this;
  }

  /** Ends our side, then closes once it is written, as net.Socket's destroySoon. */
  destroySoon(): void {
    // Before the handshake our end could never be written (close_notify needs a session).
    if (!this.#secure) {
      this.destroy();
      return;
    }
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  #onCiphertext(chunk: Buffer): void {
    if (this.destroyed) return;
    if (this.#filling && this.#secure) {
      this.#stash.push(chunk);
      this.#stashBytes += chunk.length;
      if (this.#stashBytes >= FILL_STASH_BYTES) this.#raw.pause();
      this.emit('fillable');
      return;
    }
    const plaintext = this.#engine.receive(chunk);
    const state = this.#absorbState();
    if (state === undefined) return;
    if (!this.#secure && (state & EngineState.handshakeDone) !== 0) this.#becomeSecure();
    // The plaintext that came with a close_notify goes out before the end.
    if (plaintext) this.#deliver(plaintext);
    this.#noteCloseNotify(state);
  }

  /**
   * After every engine read: sends what the engine wrote on its own, reports the sessions it made,
   * and fails the connection if TLS failed. The state, or undefined once failed.
   */
  #absorbState(): number | undefined {
    const state = this.#engine.state();
    this.#flushOwnOutput(state);
    if ((state & EngineState.newSessions) !== 0) {
      for (const { id, data } of this.#engine.takeNewSessions() ?? []) this.#onNewSession?.({ id: new Uint8Array(id), data: new Uint8Array(data) });
    }
    if ((state & EngineState.failed) === 0) return state;
    this.destroy(new Error(this.#engine.error() || 'TLS failed'));
    return undefined;
  }

  /** Ends the readable side once the peer's close_notify came; true when it has. */
  #noteCloseNotify(state: number): boolean {
    if ((state & EngineState.closeNotify) === 0) return false;
    if (!this.#closeNotify) {
      this.#closeNotify = true;
      this.push(null);
    }
    return true;
  }

  #becomeSecure(): void {
    this.#secure = true;
    this.emit('secure');
    for (const write of this.#waitingForHandshake.splice(0)) write();
  }

  #deliver(plaintext: Buffer): void {
    if (this.#filling) {
      // Came with the end of the handshake: the filling reader takes it first.
      this.#carry = this.#carry ? Buffer.concat([this.#carry, plaintext]) : plaintext;
      this.emit('fillable');
      return;
    }
    this.#plaintextRead += plaintext.length;
    if (!this.push(plaintext)) this.#raw.pause();
  }

  #flushOwnOutput(state: number): void {
    if ((state & EngineState.outputPending) === 0) return;
    const output = this.#engine.takeOutput();
    if (output && this.#raw.writable) this.#raw.write(output);
  }

  /**
   * TCP ended. Every byte before it went through the engine, so the close_notify state is exact:
   * without it the peer (or something between) cut the stream, and whoever reads it must fail.
   * After our own side finished (a download that was fully sent) a missing close_notify is
   * harmless, as clients often just close.
   */
  #onTcpEnd(): void {
    if (this.#closeNotify || this.destroyed) return;
    if (this.#filling) {
      // The close_notify may still wait in the stash: fillState() decides once it is read.
      this.#tcpEnded = true;
      this.emit('fillable');
      return;
    }
    if (this.#finishing || this.writableFinished) {
      this.push(null);
      return;
    }
    this.destroy(new Error(CUT_WITHOUT_CLOSE_NOTIFY));
  }

  override _read(): void {
    if (!this.#filling) this.#raw.resume();
  }

  /** FillableBody: decrypts what arrived straight into `target` from `offset`. */
  fill(target: Buffer, offset: number): number {
    this.#startFilling();
    let written = 0;
    if (this.#carry) {
      const copied = this.#carry.copy(target, offset);
      written += copied;
      this.#carry = copied === this.#carry.length ? undefined : this.#carry.subarray(copied);
    }
    while (offset + written < target.length && !this.destroyed) {
      const chunk = this.#takeStashed();
      const n = this.#engine.receiveInto(chunk, target, offset + written);
      written += n;
      if (!this.#afterEngineCall()) break;
      if (chunk === null && n === 0) break;
    }
    this.#plaintextRead += written;
    this.#resumeWhenDrained();
    return written;
  }

  /** FillableBody: whether bytes wait, the body ended cleanly, or neither yet. */
  fillState(): 'data' | 'end' | 'none' {
    this.#startFilling();
    if (this.#carry) return 'data';
    while (!this.destroyed) {
      const chunk = this.#takeStashed();
      const waiting = this.#engine.peek(chunk);
      if (!this.#afterEngineCall()) break;
      if (waiting) return 'data';
      if (chunk === null) break;
    }
    if (this.#closeNotify) return 'end';
    if (this.#tcpEnded && !this.destroyed) this.destroy(new Error(CUT_WITHOUT_CLOSE_NOTIFY));
    this.#resumeWhenDrained();
    return 'none';
  }

  /** While filling, TCP flows again once the stash is down to a quarter. */
  #resumeWhenDrained(): void {
    if (this.#stashBytes < FILL_STASH_BYTES / 4 && !this.destroyed) this.#raw.resume();
  }

  #startFilling(): void {
    if (this.#filling) return;
    this.#filling = true;
    // Plaintext already pushed (it came before the upload began) is handed out first.
    const buffered: unknown = this.readableLength > 0 ? this.read() : null;
    if (Buffer.isBuffer(buffered)) this.#carry = buffered;
    // Flowing with no 'data' listener: nothing is pushed any more, but the end is still emitted.
    this.resume();
  }

  #takeStashed(): Buffer | null {
    const chunk = this.#stash.shift();
    if (chunk === undefined) return null;
    this.#stashBytes -= chunk.length;
    return chunk;
  }

  /** After an engine read while filling: false once TLS failed or the close_notify came (stop reading). */
  #afterEngineCall(): boolean {
    const state = this.#absorbState();
    return state !== undefined && !this.#noteCloseNotify(state);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.#whenSecure(() => this.#send(chunks.map((entry) => entry.chunk), callback));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#whenSecure(() => this.#send([chunk], callback));
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#whenSecure(() => {
      this.#finishing = true;
      this.#engine.shutdown();
      const output = this.#engine.takeOutput();
      if (output) this.#raw.write(output);
      this.#raw.end(callback);
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#waitingForHandshake = [];
    this.#engine.free();
    this.#raw.destroy();
    callback(error);
  }

  #whenSecure(write: () => void): void {
    if (this.#secure) write();
    else this.#waitingForHandshake.push(write);
  }

  /** Encrypts the chunks into one reused buffer and writes it; done once TCP took it. */
  #send(chunks: Buffer[], callback: (error?: Error | null) => void): void {
    let plaintext = 0;
    for (const chunk of chunks) plaintext += chunk.length;
    const needed = plaintext + (Math.ceil(plaintext / RECORD_PLAINTEXT) + chunks.length + 1) * RECORD_OVERHEAD + this.#pendingOutputAllowance();
    let out = this.#spare;
    this.#spare = undefined;
    if (!out || out.length < needed) out = this.#control ? Buffer.allocUnsafe(Math.max(needed, CONTROL_OUTPUT_BYTES)) : Buffer.allocUnsafeSlow(Math.max(needed, OUTPUT_BUFFER_BYTES));
    let used: number;
    try {
      used = this.#engine.encrypt(chunks, out);
    } catch (error) {
      callback(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    const buffer = out;
    this.#raw.write(buffer.subarray(0, used), (error) => {
      if (!this.#control && buffer.length <= 4 * OUTPUT_BUFFER_BYTES) this.#spare = buffer;
      // Anything the engine could not fit (never expected) follows in order.
      this.#flushOwnOutput(this.#engine.state());
      callback(error ?? null);
    });
  }

  /** Room for handshake output still queued in the engine (tickets, at most a few KiB). */
  #pendingOutputAllowance(): number {
    return (this.#engine.state() & EngineState.outputPending) !== 0 ? 16 * 1024 : 0;
  }
}
