// Issue 3, row 5: 4 KiB STOR and RETR per second over one and 32 sessions, and EPSV → 229 latency.
//   node bench/small-files.ts [--seconds 10] [--s3-endpoint URL] [--gateway FILE]   (default: the embedded store, dist/cli.js)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { RawFtp } from '../test/helpers/raw-ftp.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const seconds = Number(flag('seconds', '10'));
const endpoint = flag('s3-endpoint', '');
const root = path.resolve(import.meta.dirname, '..');
const gatewayScript = flag('gateway', path.join(root, 'dist/cli.js'));
const dataDir = mkdtempSync(path.join(tmpdir(), 's3ftpd-small-'));
const store = endpoint ? ['--s3-endpoint', endpoint, '--s3-path-style'] : ['--data-dir', dataDir];
const child = spawn(process.execPath, [gatewayScript, '--listen', '127.0.0.1:0', '--max-connections-per-ip', '100', '--log-level', 'warn', ...store], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let out = '';
const port = await new Promise<number>((resolve) => {
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    const m = /listening on \S+:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
});
const user = endpoint ? (process.env.S3FTPD_TEST_ACCESS_KEY ?? '') : (/user \(access key\): (\S+)/.exec(out)?.[1] ?? '');
const password = endpoint ? (process.env.S3FTPD_TEST_SECRET_KEY ?? '') : (/password \(secret\): (\S+)/.exec(out)?.[1] ?? '');
const bucket = `small-${randomBytes(3).toString('hex')}`;
const admin = await RawFtp.login('127.0.0.1', port, user, password);
await admin.expect(`MKD /${bucket}`, 257);
const body = randomBytes(4096);

const quantile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
};

async function run(sessions: number, op: 'STOR' | 'RETR'): Promise<{ rate: number; epsv: number[] }> {
  const clients = await Promise.all(Array.from({ length: sessions }, () => RawFtp.login('127.0.0.1', port, user, password)));
  const epsv: number[] = [];
  let done = 0;
  const deadline = Date.now() + seconds * 1000;
  await Promise.all(
    clients.map(async (ftp, s) => {
      for (let i = 0; Date.now() < deadline && i < 1_000_000; i += 1) {
        const key = `/${bucket}/s${s}-${op === 'STOR' ? i : i % 20}.bin`;
        const started = performance.now();
        const port = await ftp.epsv();
        epsv.push(performance.now() - started);
        const data = await ftp.openData(port);
        const chunks: Buffer[] = [];
        data.on('data', (c: Buffer) => chunks.push(c));
        const closed = new Promise((r) => data.once('close', r));
        const first = await ftp.send(`${op} ${key}`);
        if (first.code !== 150) throw new Error(`${op}: ${first.text}`);
        if (op === 'STOR') data.end(body);
        await closed;
        const final = await ftp.read();
        if (final.code !== 226) throw new Error(`${op}: ${final.text}`);
        done += 1;
      }
    }),
  );
  for (const c of clients) await c.quit();
  return { rate: done / seconds, epsv };
}

const rows: string[] = [];
for (const sessions of [1, 32]) {
  for (const op of ['STOR', 'RETR'] as const) {
    const { rate, epsv } = await run(sessions, op);
    rows.push(`| ${op} 4 KiB | ${sessions} | ${rate.toFixed(0)} files/s | ${quantile(epsv, 0.5).toFixed(1)} ms | ${quantile(epsv, 0.99).toFixed(1)} ms |`);
    process.stderr.write(`${rows.at(-1)}\n`);
  }
}
console.log(`\n${endpoint ? `S3 at ${endpoint}` : 'embedded store'}, ${seconds} s per row\n\n| op | sessions | rate | EPSV→229 p50 | p99 |\n|---|---:|---:|---:|---:|\n${rows.join('\n')}`);
await admin.quit();
child.kill('SIGTERM');
rmSync(dataDir, { recursive: true, force: true });
