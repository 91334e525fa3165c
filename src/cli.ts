#!/usr/bin/env node
// Flags and environment → Config → start. Nothing else lives here.
import * as path from 'node:path';
import { parseConfig, helpText, ConfigError, type Config } from './config.ts';
import { loadTlsMaterial } from './control/tls.ts';
import { startServer } from './server.ts';
import type { Authenticator } from './control/session.ts';
import type { StorageTarget } from './storage/driver.ts';
import { verifyS3Credentials } from './storage/s3.ts';
import { loadOrCreateCredentials } from './storage/credentials.ts';
import { closeAllDrivers } from './storage/index.ts';
import { log } from './log.ts';

async function buildAuthenticator(config: Config): Promise<Authenticator> {
  const endpoint = config.s3Endpoint;
  if (endpoint !== undefined) {
    return {
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
        };
        return (await verifyS3Credentials(target)) ? target : undefined;
      },
    };
  }
  const dataDir = path.resolve(config.dataDir);
  const credentials = await loadOrCreateCredentials(dataDir);
  if (credentials.newSecret !== undefined) {
    process.stdout.write(
      `\nEmbedded store at ${dataDir}: a login was created (shown only this once).\n` +
        `  user (access key): ${credentials.accessKeyId}\n` +
        `  password (secret): ${credentials.newSecret}\n` +
        `Connect with explicit FTPS to ${config.listenHost}:${config.listenPort}, e.g.\n` +
        `  lftp -u '${credentials.accessKeyId}' -e 'set ssl:verify-certificate no' ftp://${config.listenHost}:${config.listenPort}\n\n`,
    );
  } else {
    process.stdout.write(`Embedded store at ${dataDir}; log in with access key ${credentials.accessKeyId}.\n`);
  }
  return {
    async authenticate(accessKeyId, secret) {
      return (await credentials.verify(accessKeyId, secret)) ? { kind: 'local', dataDir } : undefined;
    },
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${helpText()}\n`);
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
  const tls = await loadTlsMaterial(config);
  const authenticator = await buildAuthenticator(config);
  const server = await startServer({ config, tls, authenticator });
  const { address, port } = server.address;
  process.stdout.write(`s3ftpd listening on ${address.includes(':') ? `[${address}]` : address}:${port}\n`);
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
}

main().catch((error: unknown) => {
  process.stderr.write(`s3ftpd: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
