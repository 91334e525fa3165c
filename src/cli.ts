#!/usr/bin/env node
// Flags and environment → Config → start. Nothing else lives here.
import { isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { parseConfig, helpText, ConfigError, type Config } from './config.ts';
import { certificateFingerprint, loadTlsMaterial, type TlsMaterial } from './tls/material.ts';
import { startServer, type RunningServer } from './server.ts';
import { openBackend, type Backend } from './storage/backend.ts';
import { closeAllDrivers } from './storage/index.ts';
import { log, setLogLevel } from './log.ts';

/** A --pasv-address given as a host name (NAT set-ups) is resolved once, at start. */
async function resolvePasvAddress(config: Config): Promise<Config> {
  const name = config.pasvAddress;
  if (name === undefined || isIP(name) !== 0) return config;
  const { address } = await lookup(name, { family: 4 });
  log.info('passive address resolved', { name, address });
  return Object.freeze({ ...config, pasvAddress: address });
}

/** --help and --version answer at once; true when one of them did. */
function answeredInfoFlag(argv: readonly string[]): boolean {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${helpText()}\n`);
    return true;
  }
  if (argv.includes('--version')) {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`s3ftpd ${manifest.version}\n`);
    return true;
  }
  return false;
}

/** The settings, or undefined after a clear message (exit code 2) for bad ones. */
function readSettings(argv: readonly string[]): Config | undefined {
  try {
    return parseConfig(argv, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`s3ftpd: ${error.message}\n`);
    process.exitCode = 2;
    return undefined;
  }
}

function printAddresses(server: RunningServer, backend: Backend, tls: TlsMaterial): void {
  const hostPorts = server.addresses.map(({ address, port }) => `${address.includes(':') ? `[${address}]` : address}:${port}`);
  process.stdout.write(backend.banner(hostPorts[0] ?? ''));
  process.stdout.write(`TLS certificate SHA-256 fingerprint: ${certificateFingerprint(tls)}\n`);
  for (const hostPort of hostPorts) process.stdout.write(`s3ftpd listening on ${hostPort}\n`);
  if (server.metricsAddress) {
    process.stdout.write(`s3ftpd metrics on http://${server.metricsAddress.address}:${server.metricsAddress.port}/metrics\n`);
  }
  if (server.implicitAddress) {
    process.stdout.write(`s3ftpd implicit FTPS listening on ${server.implicitAddress.address}:${server.implicitAddress.port}\n`);
  }
}

/** SIGTERM/SIGINT drain and stop; SIGHUP reloads the certificate (a bad one keeps the old). */
function handleSignals(config: Config, server: RunningServer, backend: Backend, tls: TlsMaterial): void {
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down');
    void server.close().then(() => {
      backend.close();
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

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (answeredInfoFlag(argv)) return;
  const settings = readSettings(argv);
  if (!settings) return;
  setLogLevel(settings.logLevel);
  const config = await resolvePasvAddress(settings);
  const backend = await openBackend(config);
  process.stdout.write(backend.startupNotice);
  // With the embedded store, a generated certificate is kept next to its data (same across restarts).
  const tls = await loadTlsMaterial(config, undefined, backend.generatedCertificateDir);
  const server = await startServer({ config, tls, authenticator: backend.authenticator, storageReachable: backend.storageReachable });
  printAddresses(server, backend, tls);
  handleSignals(config, server, backend, tls);
}

main().catch((error: unknown) => {
  process.stderr.write(`s3ftpd: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
