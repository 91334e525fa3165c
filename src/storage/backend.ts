// The storage behind the gateway, set up from the settings: S3 (logins checked against S3 itself)
// or the embedded store (a local directory with one generated login and a sweeper for the temp
// files of interrupted uploads). The control plane sees only the Backend.
import * as path from 'node:path';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import type { Config } from '../config.ts';
import type { StorageTarget } from './driver.ts';

import { loadOrCreateCredentials } from './credentials.ts';
import { STATE_DIR, sweepTempFiles } from './local.ts';
import { reviveLeftovers, sweepExpiredPartials } from './local-resume.ts';
import { verifyS3Login } from './index.ts';
import { log } from '../log.ts';

const PARTIAL_SWEEP_MS = 3600_000;

/** How long a cut upload stays resumable; undefined when uploads do not resume (--upload-resume off). */
function resumeWindowOf(config: Config): number | undefined {
  return config.uploadResume ? config.uploadResumeWindowMs : undefined;
}

function succeeds(work: Promise<unknown>): Promise<boolean> {
  return work.then(
    () => true,
    () => false,
  );
}

export interface Authenticator {
  /** The storage target for a genuine key pair, or undefined for a wrong one. */
  authenticate(accessKeyId: string, secret: string): Promise<StorageTarget | undefined>;
}

export interface Backend {
  readonly authenticator: Authenticator;
  /** Whether the storage answers at all (for /readyz). */
  readonly storageReachable: () => Promise<boolean>;
  /** Printed once at start, before anything can fail: a new login's secret is shown only then. */
  readonly startupNotice: string;
  /** Printed once the server listens: how to log in. */
  readonly banner: (address: string) => string;
  /** Where a generated certificate is kept across restarts, if anywhere. */
  readonly generatedCertificateDir: string | undefined;
  /** Stops background work (the temp-file sweeper). */
  close(): void;
}

function openS3Backend(config: Config, endpoint: string): Backend {
  // Hashing every uploaded byte for SigV4 costs about 1.2 CPU-s per GiB here; over https TLS
  // already protects the bytes, so by default only plain-http endpoints pay for it.
  const unsignedPayload = config.s3UnsignedPayload === 'on' || (config.s3UnsignedPayload === 'auto' && endpoint.startsWith('https:'));
  const authenticator: Authenticator = {
    async authenticate(accessKeyId, secret) {
      const target: Extract<StorageTarget, { kind: 's3' }> = {
        kind: 's3',
        endpoint,
        region: config.s3Region,
        pathStyle: config.s3PathStyle,
        accessKeyId,
        secretAccessKey: secret,
        partSize: config.partSize,
        queueSize: config.queueSize,
        requestTimeoutMs: config.s3TimeoutMs,
        unsignedPayload,
        http: config.s3Http,
        resumeWindowMs: resumeWindowOf(config),
      };
      return (await verifyS3Login(target)) ? target : undefined;
    },
  };
  // Any HTTP answer, even 403, means S3 is up; only a network failure or timeout is not.
  const storageReachable = (): Promise<boolean> => succeeds(fetch(endpoint, { method: 'HEAD', signal: AbortSignal.timeout(2000) }));
  return {
    authenticator,
    storageReachable,
    startupNotice: '',
    banner: () => `Log in with an S3 access key as user and its secret key as password (S3 at ${endpoint}).\n`,
    generatedCertificateDir: undefined,
    close: () => undefined,
  };
}

async function openEmbeddedBackend(config: Config): Promise<Backend> {
  const dataDir = path.resolve(config.dataDir);
  const credentials = await loadOrCreateCredentials(dataDir);
  const resumeWindowMs = resumeWindowOf(config);
  const swept = await sweepTempFiles(dataDir, 0);
  if (swept > 0) log.info('removed temp files of interrupted uploads', { files: swept });
  if (resumeWindowMs !== undefined) {
    const revived = await reviveLeftovers(dataDir);
    if (revived > 0) log.info('uploads cut by the last stop kept resumable', { files: revived });
  }
  // Uploads move bytes at least every stall timeout; a temp file idle for twice that is orphaned.
  const sweeper = setInterval(() => void sweepTempFiles(dataDir, 2 * config.stallTimeoutMs), config.stallTimeoutMs).unref();
  // Cut uploads nobody continues: removed once older than the window (a walk of the whole store,
  // so at most hourly).
  const partialSweeper =
    resumeWindowMs === undefined
      ? undefined
      : setInterval(() => void sweepExpiredPartials(dataDir, resumeWindowMs, Date.now()), Math.min(resumeWindowMs, PARTIAL_SWEEP_MS)).unref();
  const user = credentials.accessKeyId;
  const secret = credentials.newSecret ?? '<the secret printed on first start>';
  const startupNotice =
    credentials.newSecret !== undefined
      ? `Embedded store at ${dataDir}. A login was created; the secret is shown only this once.\n` +
        `  user (access key): ${user}\n` +
        `  password (secret): ${secret}\n`
      : `Embedded store at ${dataDir}; user (access key): ${user}\n`;
  const banner = (address: string): string =>
    `Connect with explicit FTPS (passive mode) to ${address}, e.g.\n` +
    `  curl --ssl-reqd -k -u '${user}:${secret}' ftp://${address}/\n` +
    `  lftp -u '${user}' -e 'set ssl:verify-certificate no' ftp://${address}\n`;
  const authenticator: Authenticator = {
    async authenticate(accessKeyId, secretKey) {
      return (await credentials.verify(accessKeyId, secretKey)) ? { kind: 'local', dataDir, resumeWindowMs } : undefined;
    },
  };
  const storageReachable = (): Promise<boolean> => succeeds(access(dataDir, constants.R_OK | constants.W_OK));
  return {
    authenticator,
    storageReachable,
    startupNotice,
    banner,
    generatedCertificateDir: path.join(dataDir, STATE_DIR),
    close: () => {
      clearInterval(sweeper);
      clearInterval(partialSweeper);
    },
  };
}

/** S3 when an endpoint is configured, else the embedded store in the data directory. */
export async function openBackend(config: Config): Promise<Backend> {
  return config.s3Endpoint !== undefined ? openS3Backend(config, config.s3Endpoint) : openEmbeddedBackend(config);
}
