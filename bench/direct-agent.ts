// The `direct` side of the comparison: the same bytes moved straight to S3 with @aws-sdk/client-s3
// (GetObject) and @aws-sdk/lib-storage (Upload of a stream of unknown length), in a process of its
// own so its CPU time and memory can be read from /proc exactly like the gateway's.
// Spawned by bench/transfer.ts: one JSON line of settings in argv[2], then jobs as JSON lines on
// stdin; answers `ready`, `progress` and `done` as JSON lines on stdout.
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { S3Client, GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { matchesPattern, patternSlice } from './pattern.ts';

export interface AgentSettings {
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly partSize: number;
  readonly queueSize: number;
}

export interface AgentJob {
  readonly id: number;
  readonly op: 'up' | 'down';
  readonly bucket: string;
  readonly keys: readonly string[];
  readonly size: number;
  readonly chunk: number;
  readonly verify: boolean;
}

export type AgentMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'progress'; readonly id: number; readonly bytes: number }
  | { readonly type: 'done'; readonly id: number; readonly bytes: number; readonly wallMs: number; readonly errors: string[] };

function post(message: AgentMessage): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function patternStream(size: number, chunk: number, onBytes: (n: number) => void): Readable {
  let offset = 0;
  return new Readable({
    highWaterMark: chunk,
    read() {
      if (offset >= size) {
        this.push(null);
        return;
      }
      const view = patternSlice(offset, Math.min(chunk, size - offset));
      offset += view.length;
      onBytes(view.length);
      this.push(view);
    },
  });
}

async function upload(client: S3Client, settings: AgentSettings, job: AgentJob, key: string, onBytes: (n: number) => void): Promise<void> {
  const transfer = new Upload({
    client,
    params: { Bucket: job.bucket, Key: key, Body: patternStream(job.size, job.chunk, onBytes) },
    partSize: settings.partSize,
    queueSize: settings.queueSize,
    leavePartsOnError: false,
  });
  await transfer.done();
}

async function download(client: S3Client, job: AgentJob, key: string, onBytes: (n: number) => void): Promise<void> {
  const out = await client.send(new GetObjectCommand({ Bucket: job.bucket, Key: key }));
  const body = out.Body;
  if (!(body instanceof Readable)) throw new Error(`GetObject ${key}: no stream`);
  let received = 0;
  let corrupt = -1;
  body.on('data', (chunk: Buffer) => {
    if (job.verify && corrupt < 0 && !matchesPattern(chunk, received)) corrupt = received;
    received += chunk.length;
    onBytes(chunk.length);
  });
  await new Promise<void>((resolve, reject) => {
    body.once('end', resolve);
    body.once('error', reject);
  });
  if (received !== job.size) throw new Error(`GetObject ${key}: received ${received} of ${job.size} bytes`);
  if (corrupt >= 0) throw new Error(`GetObject ${key}: bytes differ from the pattern in the chunk at offset ${corrupt}`);
}

async function runJob(client: S3Client, settings: AgentSettings, job: AgentJob): Promise<void> {
  let bytes = 0;
  const onBytes = (n: number): void => {
    bytes += n;
  };
  const ticker = setInterval(() => post({ type: 'progress', id: job.id, bytes }), 1000);
  const started = performance.now();
  const errors: string[] = [];
  await Promise.all(
    job.keys.map((key) =>
      (job.op === 'up' ? upload(client, settings, job, key, onBytes) : download(client, job, key, onBytes)).catch((error: unknown) => {
        errors.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
      }),
    ),
  );
  const wallMs = performance.now() - started;
  clearInterval(ticker);
  post({ type: 'done', id: job.id, bytes, wallMs, errors });
}

function main(): void {
  const settings = JSON.parse(process.argv[2] ?? '{}') as AgentSettings;
  const client = new S3Client({
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    // The settings the gateway uses too: no flexible checksums (radosgw refuses a trailing
    // checksum on a stream of unknown length).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
  });
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const job = JSON.parse(line) as AgentJob;
    void runJob(client, settings, job);
  });
  lines.on('close', () => {
    client.destroy();
    process.exit(0);
  });
  post({ type: 'ready' });
}

main();
