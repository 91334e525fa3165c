// TLS for control and data connections, on the engine chosen by --tls-engine: the native engine
// (native-socket.ts) when it is built, else Node's TLSSocket, with the close_notify check of eof.ts
// where a data transfer needs it. One per thread (the main thread's for control connections, each
// data worker's); SIGHUP's new certificate reaches it by reload().
import type * as net from 'node:net';
import { isMainThread } from 'node:worker_threads';
import type * as tls from 'node:tls';
import { NATIVE_POLICY, SecureContextCache, createServerContext, wrapServerSocket } from './context.ts';
import { wrapWithEofCheck } from './eof.ts';
import type { TlsMaterial } from './material.ts';
import { createNativeContext, nativeTlsAvailable, nativeTlsProblem, type NativeContext } from './native-engine.ts';
import { NativeTlsSocket } from './native-socket.ts';
import type { TlsSessionRecord } from './sessions.ts';
import { log } from '../log.ts';

export type TlsEngine = 'native' | 'node';

/** A TLS connection, whichever engine runs it. */
export type SecureSocket = tls.TLSSocket | NativeTlsSocket;

export interface DataTlsOptions {
  /** The control connection's session id context: only its sessions resume here. */
  readonly binding: string;
  readonly sessions: readonly TlsSessionRecord[];
  /**
   * Whether the transfer needs to tell a close_notify from a bare TCP end (uploads, and clients
   * whose command is not known yet). The native engine always can; Node's TLS needs eof.ts.
   */
  readonly checkEof: boolean;
}

let warned = false;

/** The engine that will serve: native is asked for, but Node's serves when it is not built. */
export function effectiveEngine(requested: TlsEngine): TlsEngine {
  if (requested === 'node' || nativeTlsAvailable()) return requested;
  // Said once, by the main thread: every data worker falls back the same way.
  if (!warned && isMainThread) {
    warned = true;
    log.warn("native TLS engine not available; connections use Node's TLS", { reason: nativeTlsProblem });
  }
  return 'node';
}

export class ServerTls {
  readonly engine: TlsEngine;
  /** Node's contexts of data connections, by binding (a control connection opens many). */
  readonly #contexts: SecureContextCache;
  /** The native engine's one context: the binding is set per connection. */
  #native: NativeContext | undefined;
  #material: TlsMaterial;

  constructor(material: TlsMaterial, requested: TlsEngine) {
    this.engine = effectiveEngine(requested);
    this.#material = material;
    this.#contexts = new SecureContextCache(material);
  }

  #nativeContext(): NativeContext {
    this.#native ??= createNativeContext(this.#material, NATIVE_POLICY.ciphers, NATIVE_POLICY.suites, NATIVE_POLICY.sessionTimeoutSeconds);
    return this.#native;
  }

  /**
   * TLS on a control connection (AUTH TLS, implicit TLS) under its binding; `onNew` hears of every
   * session it makes, for its data connections. On Node's TLS each control connection needs a
   * context of its own (28 KiB) to carry its binding; the native engine sets it per connection.
   */
  control(plain: net.Socket, binding: string, onNew: (record: TlsSessionRecord) => void): SecureSocket {
    if (this.engine === 'native') return new NativeTlsSocket(plain, this.#nativeContext(), binding, [], { control: true, onNewSession: onNew });
    return wrapServerSocket(plain, createServerContext(this.#material, binding), { onNew });
  }

  /** TLS on a data connection's TCP socket; handshake and resumption as on its control connection. */
  data(raw: net.Socket, options: DataTlsOptions): SecureSocket {
    if (this.engine === 'native') return new NativeTlsSocket(raw, this.#nativeContext(), options.binding, options.sessions);
    const context = this.#contexts.get(options.binding);
    const sessions = { known: options.sessions };
    return options.checkEof ? wrapWithEofCheck(raw, context, sessions) : wrapServerSocket(raw, context, sessions);
  }

  /** New certificate (SIGHUP): connections from now on use it. */
  reload(material: TlsMaterial): void {
    this.#material = material;
    this.#native = undefined;
    this.#contexts.reload(material);
  }
}
