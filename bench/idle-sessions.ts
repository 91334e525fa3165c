// Issue 3, row 4: the gateway's RSS with N idle, logged-in, TLS control sessions.
//   node bench/idle-sessions.ts [--sessions 2000] [--s3-endpoint URL] [--gateway FILE] [--gateway-arg ARG]...
// (radosgw env sourced for S3; --gateway-arg repeats, e.g. --gateway-arg=--tls-engine=node)
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
const gateway = flag('gateway', path.join(root, 'dist/cli.js'));
const gatewayArgs = args.flatMap((arg, i) => (arg === '--gateway-arg' ? [args[i + 1] ?? ''] : arg.startsWith('--gateway-arg=') ? [arg.slice('--gateway-arg='.length)] : []));
const child = spawn(process.execPath, [gateway, ...gatewayArgs, '--listen', '127.0.0.1:0', '--s3-endpoint', endpoint, '--s3-path-style',
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
// With --gateway-arg=--metrics=HOST:PORT, V8's heap and external memory are shown too.
const metricsAddress = gatewayArgs.find((a) => a.startsWith('--metrics='))?.slice('--metrics='.length);
async function heap(): Promise<string> {
  if (!metricsAddress) return '';
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  const mib = (name: string): string => (Number(new RegExp(`^s3ftpd_nodejs_${name} (\\S+)`, 'm').exec(text)?.[1] ?? 0) / 2 ** 20).toFixed(1);
  return `heap used ${mib('heap_size_used_bytes')} / total ${mib('heap_size_total_bytes')} MiB, external ${mib('external_memory_bytes')} MiB`;
}
await new Promise((r) => setTimeout(r, 1000));
const base = rss();
const baseHeap = await heap();
const clients: RawFtp[] = [];
const started = Date.now();
for (let i = 0; i < sessions; i += 50) {
  clients.push(...(await Promise.all(Array.from({ length: Math.min(50, sessions - i) }, () => RawFtp.login('127.0.0.1', port, user, password)))));
  if (i % 500 === 0) process.stderr.write(`${clients.length} sessions, RSS ${rss().toFixed(0)} MiB\n`);
}
// --settle S: seconds to wait after the last login before measuring (V8 collects idle garbage).
await new Promise((r) => setTimeout(r, Number(flag('settle', '3')) * 1000));
const loaded = rss();
if (metricsAddress) console.log(`main thread before: ${baseHeap}; with sessions: ${await heap()}`);
console.log(`| idle logged-in TLS sessions | ${sessions} | gateway RSS before ${base.toFixed(0)} MiB, with sessions ${loaded.toFixed(0)} MiB (+${((loaded - base) * 1024 / sessions).toFixed(0)} KiB each) | logins took ${((Date.now() - started) / 1000).toFixed(1)} s |`);
for (const c of clients) c.destroy();
child.kill('SIGTERM');
