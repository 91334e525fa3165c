// Issue 11, lever 2 (undici for the S3 data path), measured before any change to the gateway: the
// client-side CPU of moving bytes to and from S3 with @aws-sdk/client-s3 against plain undici
// requests signed with the SDK's own SigV4 signer, in this one process, alternating, against the
// bench sink (so S3's own cost is not in the figure). Downloads are 64 MiB ranged GETs of a
// generated object, uploads 8 MiB UploadParts (UNSIGNED-PAYLOAD, as over https), bodies consumed
// or sent without stream adapters.
//   node bench/s3-http-cost.ts [--gib 2] [--rounds 3]
import { S3Client, GetObjectCommand, UploadPartCommand, CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/core/serde';
import { Agent, request } from 'undici';
import { startSink } from './children.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1] ?? fallback) : fallback;
};
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const total = flag('gib', 2) * GiB;
const rounds = flag('rounds', 3);
const GET_BYTES = 64 * MiB;
const PART_BYTES = 8 * MiB;
const credentials = { accessKeyId: 'bench-access-key', secretAccessKey: 'bench-secret-key' };
const bucket = 'cost';

const { child: sink, url } = await startSink(bucket);
const endpoint = new URL(url);
const sdk = new S3Client({
  endpoint: url,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
sdk.middlewareStack.add(
  (next) => async (args) => {
    const req = args.request as { headers?: Record<string, string> };
    if (req.headers) req.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    return next(args);
  },
  { step: 'build', name: 'unsignedPayload' },
);
const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials, sha256: Hash.bind(null, 'sha256') });
const dispatcher = new Agent({ connections: 8, keepAliveTimeout: 30_000 });
const uploadId = (await sdk.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'up.bin' }))).UploadId ?? '';
const partBody = Buffer.alloc(PART_BYTES, 7);

async function signed(method: string, path: string, query: Record<string, string>, headers: Record<string, string>): Promise<Record<string, string>> {
  const out = await signer.sign({
    method,
    protocol: endpoint.protocol,
    hostname: endpoint.hostname,
    port: Number(endpoint.port),
    path,
    query,
    headers: { host: endpoint.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...headers },
  });
  return out.headers;
}

const querySuffix = (query: Record<string, string>): string => (Object.keys(query).length === 0 ? '' : `?${new URLSearchParams(query).toString()}`);

const ways = {
  'down sdk': async (): Promise<void> => {
    const out = await sdk.send(new GetObjectCommand({ Bucket: bucket, Key: `gen/${GET_BYTES}`, Range: `bytes=0-${GET_BYTES - 1}` }));
    for await (const chunk of out.Body as AsyncIterable<Buffer>) void chunk;
  },
  'down undici': async (): Promise<void> => {
    const path = `/${bucket}/gen/${GET_BYTES}`;
    const headers = await signed('GET', path, {}, { range: `bytes=0-${GET_BYTES - 1}` });
    const { body, statusCode } = await request(`${url}${path}`, { method: 'GET', headers, dispatcher });
    if (statusCode >= 300) throw new Error(`GET ${statusCode}`);
    for await (const chunk of body) void chunk;
  },
  'up sdk': async (): Promise<void> => {
    await sdk.send(new UploadPartCommand({ Bucket: bucket, Key: 'up.bin', UploadId: uploadId, PartNumber: 1, Body: partBody, ContentLength: PART_BYTES }));
  },
  'up undici': async (): Promise<void> => {
    const path = `/${bucket}/up.bin`;
    const query = { partNumber: '1', uploadId };
    const headers = await signed('PUT', path, query, { 'content-length': String(PART_BYTES) });
    const { body, statusCode } = await request(`${url}${path}${querySuffix(query)}`, { method: 'PUT', headers, body: partBody, dispatcher });
    await body.dump();
    if (statusCode >= 300) throw new Error(`PUT ${statusCode}`);
  },
} as const;

async function measure(name: keyof typeof ways): Promise<{ cpu: number; mbps: number }> {
  const each = name.startsWith('down') ? GET_BYTES : PART_BYTES;
  const count = Math.ceil(total / each);
  const started = performance.now();
  const cpu = process.cpuUsage();
  // Four at a time, as a gateway's queue of parts and concurrent downloads would.
  for (let i = 0; i < count; i += 4) await Promise.all(Array.from({ length: Math.min(4, count - i) }, () => ways[name]()));
  const used = process.cpuUsage(cpu);
  const seconds = (performance.now() - started) / 1000;
  const bytes = count * each;
  return { cpu: (used.user + used.system) / 1e6 / (bytes / GiB), mbps: bytes / MiB / seconds };
}

const names = Object.keys(ways) as Array<keyof typeof ways>;
for (const name of names) await measure(name); // warm-up: JIT, sockets
const rows = ['| way | ' + Array.from({ length: rounds }, (_, r) => `round ${r + 1} CPU-s/GiB (MB/s)`).join(' | ') + ' |', `|---|${'---|'.repeat(rounds)}`];
const results = new Map<string, string[]>();
for (let round = 0; round < rounds; round += 1) {
  for (const name of names) {
    const { cpu, mbps } = await measure(name);
    results.set(name, [...(results.get(name) ?? []), `${cpu.toFixed(3)} (${mbps.toFixed(0)})`]);
  }
}
for (const name of names) rows.push(`| ${name} | ${(results.get(name) ?? []).join(' | ')} |`);
process.stdout.write(`S3 data path, client side only, ${total / GiB} GiB per way per round, against the bench sink\n${rows.join('\n')}\n`);
await dispatcher.close();
sdk.destroy();
await sink.stop();
