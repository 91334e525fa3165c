// TLS contexts and sockets for control and data connections: the same cert, key, ticket keys,
// ciphers and session id context everywhere, so a data connection resumes its control session.
import * as tls from 'node:tls';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { createHmac, randomBytes } from 'node:crypto';
import { sessionEvents, type SessionHooks } from './sessions.ts';
import type { TlsMaterial } from './material.ts';

// Modern AEAD suites only for TLS 1.2; TLS 1.3 suites are always AEAD.
const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];
const CIPHERS = [...TLS13_SUITES, ...TLS12_CIPHERS].join(':');
/** Seconds a session or ticket stays resumable. */
const SESSION_TIMEOUT_S = 3600;

/** The same policy for the native engine, which takes TLS 1.2 ciphers and TLS 1.3 suites apart. */
export const NATIVE_POLICY = {
  ciphers: TLS12_CIPHERS.join(':'),
  suites: TLS13_SUITES.join(':'),
  sessionTimeoutSeconds: SESSION_TIMEOUT_S,
} as const;

/** A fresh value binding one control connection's TLS sessions to its own data connections. */
export function newSessionBinding(): string {
  // OpenSSL allows at most 32 bytes of session id context.
  return randomBytes(16).toString('hex');
}

// Random per process, so the binding of an address cannot be known or chosen from outside.
const addressBindingKey = randomBytes(32);

/**
 * One binding for every control connection from a client address (--tls-session-reuse address):
 * a data connection may resume a session that any of them made, but none made from elsewhere.
 */
export function addressSessionBinding(address: string): string {
  return createHmac('sha256', addressBindingKey).update(address).digest('hex').slice(0, 32);
}

/**
 * The context for one control connection and its data connections. OpenSSL resumes a session or
 * TLS 1.3 ticket only under the session id context it was issued with, so a data connection can
 * only resume the session of its own control connection, not another one's from this server.
 */
export function createServerContext(material: TlsMaterial, sessionBinding: string): tls.SecureContext {
  return tls.createSecureContext({
    cert: material.cert,
    key: material.key,
    minVersion: 'TLSv1.2',
    ciphers: CIPHERS,
    honorCipherOrder: true,
    ticketKeys: Buffer.from(material.ticketKeys),
    sessionIdContext: sessionBinding,
    sessionTimeout: SESSION_TIMEOUT_S,
  });
}

/**
 * The server side of a TLS connection over `socket` (a TCP socket, or any duplex carrying one).
 * `sessions` records and resumes TLS 1.2 sessions by id (sessions.ts); Node raises those events
 * on the socket's `server`, which only needs to be an EventEmitter for them.
 */
export function wrapServerSocket(socket: Duplex, context: tls.SecureContext, sessions: SessionHooks = {}): tls.TLSSocket {
  const server = sessionEvents(sessions) as unknown as net.Server;
  return new tls.TLSSocket(socket, { isServer: true, secureContext: context, server });
}

/** Contexts by binding, most recently used kept: a control connection opens many data connections. */
export class SecureContextCache {
  readonly #contexts = new Map<string, tls.SecureContext>();
  readonly #limit: number;
  #material: TlsMaterial;

  constructor(material: TlsMaterial, limit = 256) {
    this.#material = material;
    this.#limit = limit;
  }

  get(binding: string): tls.SecureContext {
    let context = this.#contexts.get(binding);
    if (context) {
      this.#contexts.delete(binding);
    } else {
      context = createServerContext(this.#material, binding);
      if (this.#contexts.size >= this.#limit) this.#contexts.delete(this.#contexts.keys().next().value ?? '');
    }
    this.#contexts.set(binding, context);
    return context;
  }

  /** New certificate (SIGHUP): contexts made from now on use it. */
  reload(material: TlsMaterial): void {
    this.#material = material;
    this.#contexts.clear();
  }
}
