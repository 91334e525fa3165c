#!/usr/bin/env node
// Flags and environment → Config → start. Nothing else lives here.
import * as path from 'node:path';
import { isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import { readFileSync, constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { parseConfig, helpText, ConfigError, type Config } from './config.ts';
import { certificateFingerprint, loadTlsMaterial } from './tls/material.ts';
import { startServer } from './server.ts';
import type { Authenticator } from './control/session.ts';
import type { StorageTarget } from './storage/driver.ts';
import { verifyS3Credentials } from './storage/s3.ts';
import { loadOrCreateCredentials } from './storage/credentials.ts';
import { STATE_DIR, sweepTempFiles } from './storage/local.ts';
import { closeAllDrivers } from './storage/index.ts';
import { log, setLogLevel } from './log.ts';

interface Login {
  readonly authenticator: Authenticator;
  readonly storageReachable: () => Promise<boolean>;
  /** Printed once the server listens: how to log in. */
  readonly banner: (address: string) => string;
}

async function buildAuthenticator(config: Config): Promise<Login> {
  const endpoint = config.s3Endpoint;
  if (endpoint !== undefined) {
    // Hashing every uploaded byte for SigV4 costs about 1.2 CPU-s per GiB here; over https TLS
    // already protects the bytes, so by default only plain-http endpoints pay for it.
    const unsignedPayload = config.s3UnsignedPayload === 'on' || (config.s3UnsignedPayload === 'auto' && endpoint.startsWith('https:'));
    const authenticator: Authenticator = {
      async authenticate(accessKeyId, secret) {
        const target: StorageTarget = {
          kind: 's3',
          endpoint,
          region: config.s3Region,
          pathStyle: config.s3PathStyle,
          accessKeyId,
          secretAccessKey: secret,
          partSize: config.partSize,
          queueSize: config.queueSize,
          requestTimeoutMs: config.s3TimeoutMs,
          unsignedPayload: unsignedPayload,
        };
        return (await verifyS3Credentials(target)) ? target : undefined;
      },
    };
    const storageReachable = async (): Promise<boolean> => {
      // Any HTTP answer, even 403, means S3 is up; only a network failure or timeout is not.
      try {
        await fetch(endpoint, { method: 'HEAD', signal: AbortSignal.timeout(2000) });
        return true;
      } catch {
        return false;
      }
    };
    return { authenticator, storageReachable, banner: () => `Log in with an S3 access key as user and its secret key as password (S3 at ${endpoint}).\n` };
  }
  const dataDir = path.resolve(config.dataDir);
  const credentials = await loadOrCreateCredentials(dataDir);
  const swept = await sweepTempFiles(dataDir, 0);
  if (swept > 0) log.info('removed temp files of interrupted uploads', { files: swept });
  // Uploads move bytes at least every stall timeout; a temp file idle for twice that is orphaned.
  setInterval(() => void sweepTempFiles(dataDir, 2 * config.stallTimeoutMs), config.stallTimeoutMs).unref();
  const user = credentials.accessKeyId;
  const secret = credentials.newSecret ?? '<the secret printed on first start>';
  if (credentials.newSecret !== undefined) {
    // Printed at once: only a hash is kept, so a start that fails later (port in use) must not lose it.
    process.stdout.write(
      `Embedded store at ${dataDir}. A login was created; the secret is shown only this once.\n` +
        `  user (access key): ${user}\n` +
        `  password (secret): ${secret}\n`,
    );
  } else {
    process.stdout.write(`Embedded store at ${dataDir}; user (access key): ${user}\n`);
  }
  const banner = (address: string): string =>
    `Connect with explicit FTPS (passive mode) to ${address}, e.g.\n` +
    `  curl --ssl-reqd -k -u '${user}:${secret}' ftp://${address}/\n` +
    `  lftp -u '${user}' -e 'set ssl:verify-certificate no' ftp://${address}\n`;
  const authenticator: Authenticator = {
    async authenticate(accessKeyId, secret) {
      return (await credentials.verify(accessKeyId, secret)) ? { kind: 'local', dataDir } : undefined;
    },
  };
  const storageReachable = async (): Promise<boolean> => {
    try {
      await access(dataDir, constants.R_OK | constants.W_OK);
      return true;
    } catch {
      return false;
    }
  };
  return { authenticator, storageReachable, banner };
}

/** A --pasv-address given as a host name (NAT set-ups) is resolved once, at start. */
async function resolvePasvAddress(config: Config): Promise<Config> {
  const name = config.pasvAddress;
  if (name === undefined || isIP(name) !== 0) return config;
  const { address } = await lookup(name, { family: 4 });
  log.info('passive address resolved', { name, address });
  return Object.freeze({ ...config, pasvAddress: address });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  if (argv.includes('--version')) {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`s3ftpd ${manifest.version}\n`);
    return;
  }
  let config: Config;
  try {
    config = parseConfig(argv, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`s3ftpd: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  setLogLevel(config.logLevel);
  config = await resolvePasvAddress(config);
  // With the embedded store, a generated certificate is kept next to its data (same across restarts).
  const generatedDir = config.s3Endpoint === undefined ? path.join(path.resolve(config.dataDir), STATE_DIR) : undefined;
  const tls = await loadTlsMaterial(config, undefined, generatedDir);
  const login = await buildAuthenticator(config);
  const server = await startServer({ config, tls, authenticator: login.authenticator, storageReachable: login.storageReachable });
  const hostPorts = server.addresses.map(({ address, port }) => `${address.includes(':') ? `[${address}]` : address}:${port}`);
  process.stdout.write(login.banner(hostPorts[0] ?? ''));
  process.stdout.write(`TLS certificate SHA-256 fingerprint: ${certificateFingerprint(tls)}\n`);
  for (const hostPort of hostPorts) process.stdout.write(`s3ftpd listening on ${hostPort}\n`);
  if (server.metricsAddress) {
    process.stdout.write(`s3ftpd metrics on http://${server.metricsAddress.address}:${server.metricsAddress.port}/metrics\n`);
  }
  if (server.implicitAddress) {
    process.stdout.write(`s3ftpd implicit FTPS listening on ${server.implicitAddress.address}:${server.implicitAddress.port}\n`);
  }
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down');
    void server.close().then(() => {
      closeAllDrivers();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  let current = tls;
  process.on('SIGHUP', () => {
    loadTlsMaterial(config, current).then(
      (next) => {
        current = next;
        server.reloadTls(next);
      },
      (error: unknown) => log.error('TLS reload failed; keeping the old certificate', { error: String(error) }),
    );
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`s3ftpd: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
