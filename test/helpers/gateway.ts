// Starts the built gateway (dist/cli.js) as a child process on a chosen backend, and probes the
// store behind it directly (S3 through the SDK, the embedded store through the file system).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  S3Client,
  GetObjectCommand,
  ListObjectsV2Command,
  ListMultipartUploadsCommand,
  CreateBucketCommand,
  DeleteObjectsCommand,
  DeleteBucketCommand,
  PutObjectCommand,
  AbortMultipartUploadCommand,
} from '@aws-sdk/client-s3';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NODE = process.execPath;

export type BackendName = 's3' | 'local';

export interface StoreProbe {
  /** The object's bytes, or undefined when it does not exist. */
  get(bucket: string, key: string): Promise<Buffer | undefined>;
  /** Every key under a prefix (directory markers included, as `dir/`). */
  keys(bucket: string, prefix?: string): Promise<string[]>;
  /** Multipart uploads still open in the bucket (always 0 for the embedded store). */
  openUploads(bucket: string): Promise<number>;
  createBucket(bucket: string): Promise<void>;
  put(bucket: string, key: string, body: Buffer | string): Promise<void>;
  /** Removes the bucket and everything in it. */
  removeBucket(bucket: string): Promise<void>;
}

export interface Gateway {
  readonly backend: BackendName;
  /** The first control address the gateway printed ("s3ftpd listening on HOST:PORT"). */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly probe: StoreProbe;
  readonly logs: () => string;
  /** The gateway process, for signals and /proc. */
  readonly pid: number;
  /** The embedded store's directory (removed by stop()); undefined on S3. */
  readonly dataDir: string | undefined;
  /** Resolves with the exit code once the process has exited (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  hasExited(): boolean;
  /** SIGTERM (SIGKILL after 5 s) unless it has exited already; then removes the embedded store's directory. */
  stop(): Promise<void>;
}

export interface GatewayOptions {
  /**
   * Added after the defaults `--listen 127.0.0.1:0 --workers 1`. Each default is left out when
   * extraArgs gives that flag itself, and both are left out when it gives `--config` (the file may
   * set them, and a command-line flag would override it).
   */
  readonly extraArgs?: readonly string[];
  /** S3 credentials to use instead of the main test user (S3 backend only). */
  readonly s3User?: { accessKey: string; secretKey: string };
  /** Extra environment variables for the gateway (its S3FTPD_* settings are cleared first), e.g. S3FTPD_FAILPOINT. */
  readonly env?: Readonly<Record<string, string>>;
  /** The S3 endpoint the gateway uses (e.g. a fault proxy); `probe` still talks to the test S3 server directly. */
  readonly s3Endpoint?: string;
  /** The embedded store's directory to use (and keep on stop) instead of a fresh temporary one. */
  readonly dataDir?: string;
}

/** The gateway exited before it listened (a bad configuration, for example). */
export class GatewayExitError extends Error {
  readonly code: number | null;
  readonly output: string;
  constructor(code: number | null, output: string) {
    super(`gateway exited with ${code}:\n${output}`);
    this.code = code;
    this.output = output;
  }
}

export function s3Env(): { endpoint: string; accessKey: string; secretKey: string; scopedAccessKey: string; scopedSecretKey: string; region: string } | undefined {
  const endpoint = process.env.S3FTPD_TEST_S3_ENDPOINT;
  const accessKey = process.env.S3FTPD_TEST_ACCESS_KEY;
  const secretKey = process.env.S3FTPD_TEST_SECRET_KEY;
  if (!endpoint || !accessKey || !secretKey) return undefined;
  return {
    endpoint,
    accessKey,
    secretKey,
    scopedAccessKey: process.env.S3FTPD_TEST_SCOPED_ACCESS_KEY ?? '',
    scopedSecretKey: process.env.S3FTPD_TEST_SCOPED_SECRET_KEY ?? '',
    region: process.env.S3FTPD_TEST_REGION ?? 'us-east-1',
  };
}

/** The backends to run integration tests on; with S3FTPD_TEST_REQUIRE_S3=1 a missing radosgw is an error. */
export function backends(): BackendName[] {
  if (s3Env()) return ['s3', 'local'];
  if (process.env.S3FTPD_TEST_REQUIRE_S3 === '1') throw new Error('S3FTPD_TEST_REQUIRE_S3=1 but no S3 endpoint in the environment');
  return ['local'];
}

export function uniqueBucket(label: string): string {
  return `t-${label}-${randomBytes(4).toString('hex')}`.toLowerCase().slice(0, 63);
}

export function s3ClientFor(accessKey: string, secretKey: string): S3Client {
  const env = s3Env();
  if (!env) throw new Error('no S3 endpoint');
  return new S3Client({
    endpoint: env.endpoint,
    region: env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

function s3Probe(client: S3Client): StoreProbe {
  const keys = async (bucket: string, prefix = ''): Promise<string[]> => {
    const out: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 1000; page += 1) {
      const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      out.push(...(res.Contents ?? []).map((o) => o.Key ?? ''));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
      if (!token) break;
    }
    return out.sort();
  };
  return {
    async get(bucket, key) {
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from(await res.Body!.transformToByteArray());
      } catch (error) {
        if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
        throw error;
      }
    },
    keys,
    async openUploads(bucket) {
      const res = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return res.Uploads?.length ?? 0;
    },
    async createBucket(bucket) {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
    },
    async put(bucket, key, body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    async removeBucket(bucket) {
      try {
        const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
        for (const u of uploads.Uploads ?? []) {
          await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
        }
        const all = await keys(bucket);
        for (let i = 0; i < all.length; i += 1000) {
          await client.send(
            new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: all.slice(i, i + 1000).map((Key) => ({ Key })) } }),
          );
        }
        await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      } catch (error) {
        if ((error as { name?: string }).name !== 'NoSuchBucket') throw error;
      }
    },
  };
}

function localProbe(dataDir: string): StoreProbe {
  const walk = async (dir: string, prefix: string, out: string[]): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) {
        out.push(`${prefix}${e.name}/`);
        await walk(path.join(dir, e.name), `${prefix}${e.name}/`, out);
      } else out.push(`${prefix}${e.name}`);
    }
  };
  return {
    async get(bucket, key) {
      const file = path.join(dataDir, bucket, key);
      const info = await stat(file).catch(() => undefined);
      return info?.isFile() ? readFile(file) : undefined;
    },
    async keys(bucket, prefix = '') {
      const out: string[] = [];
      await walk(path.join(dataDir, bucket), '', out);
      return out.filter((k) => k.startsWith(prefix)).sort();
    },
    async openUploads(bucket) {
      // The embedded store writes through temp files (an upload of a new file next to it, as
      // `.s3ftpd-partial-<name>.<random>.upload`, so a crash leaves it resumable); none may be left behind.
      const temp = (await readdir(path.join(dataDir, '.s3ftpd', 'tmp')).catch(() => [])).length;
      const files = await readdir(path.join(dataDir, bucket), { recursive: true }).catch(() => [] as string[]);
      return temp + files.filter((name) => /(^|\/)\.s3ftpd-partial-.*\.upload$/.test(name)).length;
    },
    async createBucket(bucket) {
      const { mkdir } = await import('node:fs/promises');
      await mkdir(path.join(dataDir, bucket));
    },
    async put(bucket, key, body) {
      const { mkdir, writeFile } = await import('node:fs/promises');
      const file = path.join(dataDir, bucket, key);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, body);
    },
    async removeBucket(bucket) {
      await rm(path.join(dataDir, bucket), { recursive: true, force: true });
    },
  };
}

function waitForListening(child: ChildProcess, output: { text: string }): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${output.text}`)), 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      output.text += chunk.toString();
      const match = /s3ftpd listening on (\S+):(\d+)\n/.exec(output.text);
      if (match) {
        clearTimeout(timer);
        resolve({ host: (match[1] ?? '').replace(/^\[(.*)\]$/, '$1'), port: Number(match[2]) });
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output.text += chunk.toString();
    });
    // 'close' comes after the output streams ended, so the error carries all of it.
    child.once('close', (code) => {
      clearTimeout(timer);
      reject(new GatewayExitError(code, output.text));
    });
  });
}

function hasFlag(args: readonly string[], flag: string): boolean {
  return args.some((a) => a === flag || a.startsWith(`${flag}=`));
}

export async function startGateway(backend: BackendName, options: GatewayOptions = {}): Promise<Gateway> {
  const extra = options.extraArgs ?? [];
  const fromFile = hasFlag(extra, '--config');
  // S3FTPD_TEST_GATEWAY runs the tests against another build (e.g. one made with tsc --outDir).
  const args = [process.env.S3FTPD_TEST_GATEWAY ?? path.join(ROOT, 'dist/cli.js')];
  if (!fromFile && !hasFlag(extra, '--listen')) args.push('--listen', '127.0.0.1:0');
  if (!fromFile && !hasFlag(extra, '--workers')) args.push('--workers', '1');
  // make test runs the data-plane tests a second time on Node's TLS (S3FTPD_TEST_TLS_ENGINE=node).
  const engine = process.env.S3FTPD_TEST_TLS_ENGINE;
  if (engine !== undefined && !fromFile && !hasFlag(extra, '--tls-engine')) args.push('--tls-engine', engine);
  args.push(...extra);
  let dataDir: string | undefined;
  let user: string;
  let password: string;
  let probe: StoreProbe;
  if (backend === 's3') {
    const env = s3Env();
    if (!env) throw new Error('no S3 endpoint');
    args.push('--s3-endpoint', options.s3Endpoint ?? env.endpoint, '--s3-path-style', '--s3-region', env.region);
    user = options.s3User?.accessKey ?? env.accessKey;
    password = options.s3User?.secretKey ?? env.secretKey;
    probe = s3Probe(s3ClientFor(env.accessKey, env.secretKey));
  } else {
    dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 's3ftpd-test-')));
    args.push('--data-dir', dataDir);
    user = '';
    password = '';
    probe = localProbe(dataDir);
  }
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('S3FTPD_') && !key.startsWith('S3FTPD_TEST_')) delete env[key];
  Object.assign(env, options.env);
  const child = spawn(NODE, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const hasExited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const stop = async (): Promise<void> => {
    if (!hasExited()) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (dataDir && options.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
  };
  const output = { text: '' };
  let address: { host: string; port: number };
  try {
    address = await waitForListening(child, output);
  } catch (error) {
    await stop();
    throw error;
  }
  if (backend === 'local') {
    user = /user \(access key\): (\S+)/.exec(output.text)?.[1] ?? '';
    password = /password \(secret\): (\S+)/.exec(output.text)?.[1] ?? '';
  }
  return {
    backend,
    host: address.host,
    port: address.port,
    user,
    password,
    probe,
    logs: () => output.text,
    pid: child.pid ?? 0,
    dataDir,
    exited,
    hasExited,
    stop,
  };
}
