// Issue 3, row 7: autocannon where the load is HTTP. Targets: the S3 sink (HeadObject and a small
// ranged GetObject of generated keys; the sink accepts unsigned requests) and the gateway's
// --metrics endpoint (/metrics, /healthz), each while the gateway is idle and while FTPS transfers
// run through it (--busy-sessions sessions alternating STOR and RETR of --busy-size each).
//
//   node bench/http-load.ts [--gateway bench/out/<rev>/dist/cli.js] [--seconds 5] [--connections 10]
//        [--busy-sessions 16] [--busy-size 32MiB] [--quiet-wait 20]
//
// autocannon runs in a worker thread of its own (its `workers` option), so the FTPS clients that
// make the gateway busy do not delay its event loop. Exits 1 when a request or transfer failed.
import * as os from 'node:os';
import * as path from 'node:path';
import autocannon from 'autocannon';
import { parseSize, formatSize } from './pattern.ts';
import { login, retrieve, store, type Endpoint, type RawFtp } from './ftps-client.ts';
import { ROOT, startGateway, startSink, type Child } from './children.ts';
import { cpuSeconds, machineBusySeconds } from './proc.ts';
import { parseFlags, waitForQuiet } from './port-range.ts';

const USAGE = `Usage: node bench/http-load.ts [flags]
  --gateway FILE        gateway entry point (default dist/cli.js; build with bench/snapshot.sh)
  --seconds N           autocannon duration per target and state (default 5)
  --connections N       autocannon connections (default 10)
  --busy-sessions N     FTPS sessions moving data in the "transfers running" state (default 16)
  --busy-size SIZE      bytes per STOR/RETR in that state (default 32MiB)
  --quiet-wait SECONDS  before each measurement, wait up to this long for other processes to go quiet (default 20)
`;

interface Target {
  readonly name: string;
  readonly url: string;
  readonly method: 'GET' | 'HEAD';
  readonly headers: Record<string, string>;
}

interface Row {
  readonly target: string;
  readonly state: 'idle' | 'transfers running';
  readonly result: autocannon.Result;
  readonly transferMBps: number | undefined;
  readonly otherCores: number;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Requests per second over the whole run (autocannon's `requests.average` is a mean of 1 s samples). */
function rate(result: autocannon.Result): number {
  return result.requests.total / result.duration;
}

/** autocannon records whole milliseconds: 0 means under one. */
function ms(value: number): string {
  return value === 0 ? '<1' : String(value);
}

/** FTPS sessions alternating STOR and RETR until stopped; counts bytes and failures. */
function busyTransfers(endpoint: Endpoint, sessions: number, size: number): { stop: () => Promise<void>; bytes: () => number; errors: string[] } {
  let running = true;
  let bytes = 0;
  const errors: string[] = [];
  const options = { chunk: 256 * 1024, verify: true, onBytes: (n: number) => void (bytes += n), timeoutMs: 120_000 };
  const loops = Array.from({ length: sessions }, async (_, i) => {
    let ftp: RawFtp | undefined;
    try {
      ftp = await login(endpoint);
      // Bounded by `running`, which stop() clears.
      for (let n = 0; running; n += 1) {
        if ((n + i) % 2 === 0) await store(ftp, `/bench/http-load/${i}`, size, options);
        else await retrieve(ftp, `/bench/gen/${size}`, size, options);
      }
    } catch (error) {
      errors.push(error instanceof Error ? error.message : String(error));
    } finally {
      await ftp?.quit();
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
    bytes: () => bytes,
    errors,
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help')) {
    process.stdout.write(USAGE);
    return;
  }
  const flags = parseFlags(argv, ['gateway', 'seconds', 'connections', 'busy-sessions', 'busy-size', 'quiet-wait'], USAGE);
  const seconds = flags.int('seconds', 5);
  const connections = flags.int('connections', 10);
  const busySessions = flags.int('busy-sessions', 16);
  const busySize = parseSize(flags.text('busy-size', '32MiB'));
  const quietWaitS = flags.int('quiet-wait', 20);
  const children: Child[] = [];
  try {
    const sink = await startSink('bench');
    children.push(sink.child);
    const gateway = await startGateway({
      script: path.resolve(ROOT, flags.text('gateway', 'dist/cli.js')),
      endpoint: sink.url,
      region: 'us-east-1',
      workers: 2,
      partSize: 8 * 1024 * 1024,
      queueSize: 2,
      pasvPorts: '10100-12000',
      extraArgs: ['--metrics', '127.0.0.1:0'],
      cpuProfDir: undefined,
    });
    children.push(gateway.child);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const metrics = /s3ftpd metrics on (http:\/\/[^/\s]+)/.exec(gateway.child.output())?.[1];
    if (!metrics) throw new Error('the gateway printed no metrics address');
    const endpoint: Endpoint = { host: '127.0.0.1', port: gateway.port, user: 'bench-access-key', password: 'bench-secret-key' };
    const targets: Target[] = [
      // An empty object: autocannon's parser waits for a HEAD response's Content-Length bytes of body.
      { name: 'sink HeadObject (empty object)', url: `${sink.url}/bench/gen/0`, method: 'HEAD', headers: {} },
      { name: 'sink GetObject, 4 KiB range', url: `${sink.url}/bench/gen/1073741824`, method: 'GET', headers: { range: 'bytes=4096-8191' } },
      { name: 'gateway /metrics', url: `${metrics}/metrics`, method: 'GET', headers: {} },
      { name: 'gateway /healthz', url: `${metrics}/healthz`, method: 'GET', headers: {} },
    ];
    const ours = (): number => {
      const usage = process.cpuUsage();
      return (usage.user + usage.system) / 1e6 + children.reduce((sum, c) => sum + cpuSeconds(c.pid), 0);
    };
    const rows: Row[] = [];
    const transferErrors: string[] = [];
    for (const state of ['idle', 'transfers running'] as const) {
      for (const target of targets) {
        await waitForQuiet(quietWaitS, ours);
        const busy = state === 'idle' ? undefined : busyTransfers(endpoint, busySessions, busySize);
        // Let the transfers get going before measuring.
        if (busy) await new Promise((resolve) => setTimeout(resolve, 1000));
        const bytes0 = busy?.bytes() ?? 0;
        const machine0 = machineBusySeconds();
        const ours0 = ours();
        const started = performance.now();
        log(`${target.name}, gateway ${state}: ${seconds} s, ${connections} connections`);
        const result = await autocannon({ url: target.url, method: target.method, headers: target.headers, connections, duration: seconds, workers: 1 });
        const wall = (performance.now() - started) / 1000;
        const otherCores = Math.max(0, machineBusySeconds() - machine0 - (ours() - ours0)) / wall;
        const transferMBps = busy ? (busy.bytes() - bytes0) / 1e6 / wall : undefined;
        if (busy) {
          await busy.stop();
          transferErrors.push(...busy.errors);
        }
        log(
          `  ${rate(result).toFixed(0)} req/s, latency p50 ${ms(result.latency.p50)} ms p99 ${ms(result.latency.p99)} ms, ${result.errors} errors, ${result.non2xx} non-2xx` +
            (transferMBps !== undefined ? `, FTPS transfers ${transferMBps.toFixed(0)} MB/s` : '') +
            `, other load ${otherCores.toFixed(2)} cores`,
        );
        rows.push({ target: target.name, state, result, transferMBps, otherCores });
      }
    }
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    process.stdout.write(
      `\n**bench/http-load.ts · autocannon ${connections} connections × ${seconds} s (worker thread) · ${os.cpus().length} × ${cpu} · node ${process.version} · ` +
        `busy = ${busySessions} FTPS sessions alternating STOR/RETR of ${formatSize(busySize)}**\n\n` +
        '| target | gateway | req/s | latency p50 / p99 ms | errors (timeouts) | non-2xx | FTPS MB/s meanwhile | other load |\n' +
        '|---|---|---:|---:|---:|---:|---:|---:|\n' +
        rows
          .map(
            (r) =>
              `| ${r.target} | ${r.state} | ${rate(r.result).toFixed(0)} | ${ms(r.result.latency.p50)} / ${ms(r.result.latency.p99)} | ` +
              `${r.result.errors} (${r.result.timeouts}) | ${r.result.non2xx} | ${r.transferMBps === undefined ? '–' : r.transferMBps.toFixed(0)} | ${r.otherCores.toFixed(2)} |`,
          )
          .join('\n') +
        '\n',
    );
    if (transferErrors.length > 0) log(`${transferErrors.length} FTPS transfer errors: ${transferErrors.slice(0, 3).join(' | ')}`);
    if (transferErrors.length > 0 || rows.some((r) => r.result.errors > 0 || r.result.non2xx > 0)) process.exitCode = 1;
  } finally {
    for (const child of children.reverse()) await child.stop();
  }
}

main().catch((error: unknown) => {
  log(`http-load bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
