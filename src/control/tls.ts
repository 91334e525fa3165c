// TLS material shared by the control server and the data workers, so data connections can resume
// the control connection's session (same cert, key, ticket keys, ciphers and session id context).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { sessionEvents, type SessionHooks } from './tls-sessions.ts';
import { createHmac, randomBytes, X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import type { Config } from '../config.ts';
import { log } from '../log.ts';

/** BroadcastChannel name on which the main thread sends reloaded TlsMaterial to the workers. */
export const TLS_RELOAD_CHANNEL = 's3ftpd-tls-reload';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ticketKeys: Uint8Array;
}

// Modern AEAD suites only for TLS 1.2; TLS 1.3 suites are always AEAD.
const CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

async function generatePair(): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: 'commonName', value: 's3ftpd' }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
  });
  return { cert: pems.cert, key: pems.private };
}

/**
 * The generated pair kept in `dir` (the embedded store's state directory), made on first use, so
 * a client that chose to trust it is not asked again after a restart.
 */
async function keptGeneratedPair(dir: string): Promise<{ cert: string; key: string }> {
  const certFile = path.join(dir, 'tls-cert.pem');
  const keyFile = path.join(dir, 'tls-key.pem');
  try {
    const [cert, key] = await Promise.all([fs.readFile(certFile, 'utf8'), fs.readFile(keyFile, 'utf8')]);
    return { cert, key };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const pair = await generatePair();
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.writeFile(keyFile, pair.key, { mode: 0o600 });
  await fs.writeFile(certFile, pair.cert, { mode: 0o644 });
  return pair;
}

/** The SHA-256 fingerprint clients show when they ask whether to trust the certificate. */
export function certificateFingerprint(material: TlsMaterial): string {
  return new X509Certificate(material.cert).fingerprint256;
}

/**
 * Reads the certificate and key (or generates a self-signed pair, kept in `generatedDir` when
 * given). `previous` keeps the ticket keys across a reload so sessions issued before it stay
 * resumable.
 */
export async function loadTlsMaterial(config: Config, previous?: TlsMaterial, generatedDir?: string): Promise<TlsMaterial> {
  // A generated certificate is kept across reloads: clients accepted it once.
  if (previous && config.tlsCert === undefined) return previous;
  let cert: string;
  let key: string;
  if (config.tlsCert !== undefined && config.tlsKey !== undefined) {
    [cert, key] = await Promise.all([fs.readFile(config.tlsCert, 'utf8'), fs.readFile(config.tlsKey, 'utf8')]);
  } else {
    log.warn('no --tls-cert/--tls-key given: using a generated self-signed certificate', { keptIn: generatedDir });
    ({ cert, key } = generatedDir === undefined ? await generatePair() : await keptGeneratedPair(generatedDir));
  }
  // Fails here, not at the next AUTH TLS, on a bad file or a certificate that does not match the
  // key (a renewal copied half-way): the caller then keeps the old pair.
  tls.createSecureContext({ cert, key });
  return {
    cert,
    key,
    ticketKeys: previous?.ticketKeys ?? randomBytes(48),
  };
}

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
    sessionTimeout: 3600,
  });
}

/**
 * The server side of a TLS connection over `socket` (a TCP socket, or any duplex carrying one).
 * `sessions` records and resumes TLS 1.2 sessions by id (tls-sessions.ts); Node raises those events
 * on the socket's `server`, which only needs to be an EventEmitter for them.
 */
export function wrapServerSocket(socket: Duplex, context: tls.SecureContext, sessions: SessionHooks = {}): tls.TLSSocket {
  const server = sessionEvents(sessions) as unknown as net.Server;
  return new tls.TLSSocket(socket, { isServer: true, secureContext: context, server });
}
