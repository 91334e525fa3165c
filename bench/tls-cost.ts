// What TLS alone costs a Node server on this machine, to put the gateway's CPU-s/GiB in proportion:
// a server process receives (or sends) N bytes over one TLS 1.3 connection, either on a native
// TLSSocket over the TCP socket or through the gateway's close_notify check (src/tls/eof.ts,
// a JS Duplex between TCP and TLS), with several write sizes for sending. CPU seconds of the server
// process from /proc, per GiB.
//
//   node bench/tls-cost.ts [--size 2GiB] [--runs 3]
import * as net from 'node:net';
import * as tls from 'node:tls';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { generate } from 'selfsigned';
import { cpuSeconds } from './proc.ts';
import { drained, parseSize, patternSlice } from './pattern.ts';
import { median } from './report.ts';

type Wrap = 'native' | 'eof-check';

interface Case {
  readonly direction: 'receive' | 'send';
  readonly wrap: Wrap;
  readonly write: number;
}

async function server(): Promise<void> {
  const { wrapWithEofCheck } = await import('../src/tls/eof.ts');
  const pems = await generate([{ name: 'commonName', value: 'bench' }], { keySize: 2048, algorithm: 'sha256' });
  const context = tls.createSecureContext({ cert: pems.cert, key: pems.private, minVersion: 'TLSv1.3' });
  const tcp = net.createServer((raw) => {
    raw.once('data', (first: Buffer) => {
      // The client announces the case in one line before TLS starts.
      const [direction, wrap, write, size] = first.toString('utf8').trim().split(' ');
      raw.write('go\n');
      const socket = wrap === 'native' ? new tls.TLSSocket(raw, { isServer: true, secureContext: context }) : wrapWithEofCheck(raw, context);
      socket.on('error', () => undefined);
      if (direction === 'receive') {
        socket.on('data', () => undefined);
        socket.on('end', () => socket.end());
        return;
      }
      void (async () => {
        await once(socket, 'secure');
        const total = Number(size);
        const chunk = Number(write);
        for (let offset = 0; offset < total && !socket.destroyed; ) {
          const view = patternSlice(offset, Math.min(chunk, total - offset));
          offset += view.length;
          if (!socket.write(view)) await drained(socket);
        }
        socket.end();
      })();
    });
  });
  tcp.listen(0, '127.0.0.1', () => {
    const address = tcp.address() as net.AddressInfo;
    process.stdout.write(`port ${address.port}\n`);
  });
}

async function runCase(port: number, pid: number, c: Case, size: number): Promise<{ cpuPerGiB: number; mbps: number }> {
  const raw = net.connect({ host: '127.0.0.1', port });
  await once(raw, 'connect');
  raw.write(`${c.direction} ${c.wrap} ${c.write} ${size}\n`);
  await once(raw, 'data');
  const socket = tls.connect({ socket: raw, rejectUnauthorized: false });
  await once(socket, 'secureConnect');
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  let received = 0;
  if (c.direction === 'receive') {
    for (let offset = 0; offset < size; ) {
      const view = patternSlice(offset, Math.min(256 * 1024, size - offset));
      offset += view.length;
      if (!socket.write(view)) await drained(socket);
    }
    socket.end();
    socket.resume();
    await once(socket, 'close');
  } else {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    await once(socket, 'close');
    if (received !== size) throw new Error(`received ${received} of ${size}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { cpuPerGiB: (cpuSeconds(pid) - cpu0) / (size / 1024 ** 3), mbps: size / 1e6 / seconds };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const get = (flag: string, fallback: string): string => {
    const at = args.indexOf(flag);
    return at >= 0 ? (args[at + 1] ?? fallback) : fallback;
  };
  const size = parseSize(get('--size', '2GiB'));
  const runs = Number(get('--runs', '3'));
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'server'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const port = Number(/port (\d+)/.exec(line.toString())?.[1]);
  const cases: Case[] = [
    { direction: 'receive', wrap: 'native', write: 0 },
    { direction: 'receive', wrap: 'eof-check', write: 0 },
    ...[16 * 1024, 64 * 1024, 1024 * 1024].flatMap((write) => [
      { direction: 'send' as const, wrap: 'native' as const, write },
      { direction: 'send' as const, wrap: 'eof-check' as const, write },
    ]),
  ];
  const lines = ['| server | TLS wrapping | write size | CPU-s/GiB | MB/s |', '|---|---|---:|---:|---:|'];
  try {
    for (const c of cases) {
      const results = [];
      for (let run = 0; run < runs; run += 1) results.push(await runCase(port, child.pid ?? 0, c, size));
      const cpu = median(results.map((r) => r.cpuPerGiB));
      const mbps = median(results.map((r) => r.mbps));
      process.stderr.write(`${c.direction} ${c.wrap} ${c.write}: ${cpu.toFixed(2)} CPU-s/GiB, ${mbps.toFixed(0)} MB/s\n`);
      lines.push(`| ${c.direction} | ${c.wrap === 'native' ? 'TLSSocket on the TCP socket' : 'src/tls/eof.ts (JS Duplex)'} | ${c.write === 0 ? '–' : `${c.write / 1024} KiB`} | ${cpu.toFixed(2)} | ${mbps.toFixed(0)} |`);
    }
  } finally {
    child.kill('SIGTERM');
  }
  process.stdout.write(`\n${lines.join('\n')}\n`);
}

if (process.argv[2] === 'server') void server();
else
  main().catch((error: unknown) => {
    process.stderr.write(`tls-cost: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
