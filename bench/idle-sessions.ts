// Issue 3, row 4: the gateway's RSS with N idle, logged-in, TLS control sessions.
//   node bench/idle-sessions.ts [--sessions 2000] [--s3-endpoint URL]   (radosgw env sourced for S3)
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { RawFtp } from '../test/helpers/raw-ftp.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const sessions = Number(flag('sessions', '2000'));
const endpoint = flag('s3-endpoint', process.env.S3FTPD_TEST_S3_ENDPOINT ?? '');
if (!endpoint) throw new Error('needs an S3 endpoint (logins on the embedded store run scrypt: too slow for thousands)');
const user = process.env.S3FTPD_TEST_ACCESS_KEY ?? '';
const password = process.env.S3FTPD_TEST_SECRET_KEY ?? '';
const root = path.resolve(import.meta.dirname, '..');
const child = spawn(process.execPath, [path.join(root, 'dist/cli.js'), '--listen', '127.0.0.1:0', '--s3-endpoint', endpoint, '--s3-path-style',
  '--max-connections-per-ip', String(sessions + 10), '--max-connections', String(sessions + 10), '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise<number>((resolve) => {
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    const m = /listening on \S+:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
});
const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
await new Promise((r) => setTimeout(r, 1000));
const base = rss();
const clients: RawFtp[] = [];
const started = Date.now();
for (let i = 0; i < sessions; i += 50) {
  clients.push(...(await Promise.all(Array.from({ length: Math.min(50, sessions - i) }, () => RawFtp.login('127.0.0.1', port, user, password)))));
  if (i % 500 === 0) process.stderr.write(`${clients.length} sessions, RSS ${rss().toFixed(0)} MiB\n`);
}
await new Promise((r) => setTimeout(r, 3000));
const loaded = rss();
console.log(`| idle logged-in TLS sessions | ${sessions} | gateway RSS before ${base.toFixed(0)} MiB, with sessions ${loaded.toFixed(0)} MiB (+${((loaded - base) * 1024 / sessions).toFixed(0)} KiB each) | logins took ${((Date.now() - started) / 1000).toFixed(1)} s |`);
for (const c of clients) c.destroy();
child.kill('SIGTERM');
