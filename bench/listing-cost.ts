// What resumable uploads cost a listing (SPEC §7): with --upload-resume on, LIST also lists the
// directory's resume records (one ListObjectsV2, one small GET per record). Same radosgw, same
// directory, the gateway with resume on and off, alternating, in one run; medians of LIST wall
// time and the gateway's CPU seconds per LIST.
//   node bench/listing-cost.ts [--files 1000] [--lists 40] [--rounds 3]   (radosgw env: S3FTPD_TEST_*)
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ROOT, startGateway } from './children.ts';
import { cpuSeconds } from './proc.ts';
import { RawFtp } from './ftps-client.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): number => {
  const i = args.indexOf(`--${name}`);
  return Number(i >= 0 ? (args[i + 1] ?? fallback) : fallback);
};
const files = flag('files', '1000');
const lists = flag('lists', '40');
const rounds = flag('rounds', '3');
const endpoint = process.env.S3FTPD_TEST_S3_ENDPOINT;
const accessKeyId = process.env.S3FTPD_TEST_ACCESS_KEY ?? '';
const secretAccessKey = process.env.S3FTPD_TEST_SECRET_KEY ?? '';
if (!endpoint) throw new Error('needs radosgw: S3FTPD_TEST_S3_ENDPOINT, S3FTPD_TEST_ACCESS_KEY, S3FTPD_TEST_SECRET_KEY');

const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
const bucket = `bench-list-${randomBytes(3).toString('hex')}`;
await s3.send(new CreateBucketCommand({ Bucket: bucket }));
for (let i = 0; i < files; i += 50) {
  await Promise.all(
    Array.from({ length: Math.min(50, files - i) }, (_, k) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: `dir/f${i + k}.bin`, Body: 'x' }))),
  );
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

async function measure(resume: 'on' | 'off'): Promise<{ ms: number; cpuMs: number }> {
  const { child, port } = await startGateway({
    script: `${ROOT}/dist/cli.js`,
    endpoint: endpoint ?? '',
    region: 'us-east-1',
    workers: 1,
    partSize: 8 * 1024 * 1024,
    queueSize: 2,
    pasvPorts: '15000-15999',
    extraArgs: ['--upload-resume', resume, '--log-level', 'warn'],
    cpuProfDir: undefined,
  });
  try {
    const ftp = await RawFtp.login('127.0.0.1', port, accessKeyId, secretAccessKey);
    await ftp.list(`LIST /${bucket}/dir`);
    const times: number[] = [];
    const cpuBefore = cpuSeconds(child.pid);
    for (let i = 0; i < lists; i += 1) {
      const started = performance.now();
      const lines = await ftp.list(`LIST /${bucket}/dir`);
      times.push(performance.now() - started);
      if (lines.length !== files) throw new Error(`LIST gave ${lines.length} lines, expected ${files}`);
    }
    const cpuMs = ((cpuSeconds(child.pid) - cpuBefore) * 1000) / lists;
    await ftp.quit();
    return { ms: median(times), cpuMs };
  } finally {
    await child.stop();
  }
}

const rows: string[] = ['| round | resume | LIST median ms | gateway CPU ms per LIST |', '|---|---|---|---|'];
for (let round = 1; round <= rounds; round += 1) {
  for (const resume of ['off', 'on'] as const) {
    const { ms, cpuMs } = await measure(resume);
    rows.push(`| ${round} | ${resume} | ${ms.toFixed(1)} | ${cpuMs.toFixed(1)} |`);
  }
}
for (let i = 0; i < files; i += 1000) {
  const keys = Array.from({ length: Math.min(1000, files - i) }, (_, k) => ({ Key: `dir/f${i + k}.bin` }));
  await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
}
await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
process.stdout.write(`LIST of a directory of ${files} objects on radosgw, ${lists} LISTs per gateway start\n${rows.join('\n')}\n`);
