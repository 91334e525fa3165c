// TLS for data connections, on the engine chosen by --data-tls-engine: the native engine
// (native-socket.ts) when it is built, else Node's TLSSocket, with the close_notify check of eof.ts
// where a transfer needs it. One per data thread; SIGHUP's new certificate reaches it by reload().
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { NATIVE_POLICY, SecureContextCache, wrapServerSocket } from './context.ts';
import { wrapWithEofCheck } from './eof.ts';
import type { TlsMaterial } from './material.ts';
import { createNativeContext, nativeTlsAvailable, nativeTlsProblem, type NativeContext } from './native-engine.ts';
import { NativeTlsSocket } from './native-socket.ts';
import type { TlsSessionRecord } from './sessions.ts';
import { log } from '../log.ts';

export type DataTlsEngine = 'native' | 'node';

/** A secured data connection, whichever engine runs it. */
export type SecureDataSocket = tls.TLSSocket | NativeTlsSocket;

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
export function effectiveEngine(requested: DataTlsEngine): DataTlsEngine {
  if (requested === 'node' || nativeTlsAvailable()) return requested;
  if (!warned) {
    warned = true;
    log.warn("native TLS engine not available; data connections use Node's TLS", { reason: nativeTlsProblem });
  }
  return 'node';
}

export class DataTls {
  readonly engine: DataTlsEngine;
  readonly #contexts: SecureContextCache;
  #native: NativeContext | undefined;
  #material: TlsMaterial;

  constructor(material: TlsMaterial, requested: DataTlsEngine) {
    this.engine = effectiveEngine(requested);
    this.#material = material;
    this.#contexts = new SecureContextCache(material);
  }

  /** TLS on a data connection's TCP socket; handshake and resumption as on its control connection. */
  wrap(raw: net.Socket, options: DataTlsOptions): SecureDataSocket {
    if (this.engine === 'native') {
      this.#native ??= createNativeContext(this.#material, NATIVE_POLICY.ciphers, NATIVE_POLICY.suites, NATIVE_POLICY.sessionTimeoutSeconds);
      return new NativeTlsSocket(raw, this.#native, options.binding, options.sessions);
    }
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
