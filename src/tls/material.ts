// The certificate, key and ticket keys shared by the control server and the data workers, so data
// connections can resume the control connection's session; loaded at start and on SIGHUP.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { randomBytes, X509Certificate } from 'node:crypto';
import type { Config } from '../config.ts';
import { log } from '../log.ts';

/** BroadcastChannel name on which the main thread sends reloaded TlsMaterial to the workers. */
export const TLS_RELOAD_CHANNEL = 's3ftpd-tls-reload';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ticketKeys: Uint8Array;
}

async function generatePair(): Promise<{ cert: string; key: string }> {
  // Loaded only to make a certificate (about 7 MiB otherwise held for nothing).
  const { generate } = await import('selfsigned');
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
