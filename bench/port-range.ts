// Issue 3, row 6: the passive port range under churn. N concurrent FTPS transfers (half uploads,
// half downloads, sizes spread between --min-size and --max-size) through the built gateway on the
// S3 sink, repeated for --rounds, so that more allocations than the range holds are made and every
// port is used again. Counts 425 replies, EADDRINUSE (client errors and the gateway's log) and
// other errors; checks every downloaded byte against the pattern and every upload's stored size.
//
//   node bench/port-range.ts [--gateway bench/out/<rev>/dist/cli.js] [--transfers 500] [--rounds 5]
//        [--sessions reuse|fresh] [--min-size 256KiB] [--max-size 1MiB] [--pasv-ports 10100-12000]
//
// --sessions reuse (default): N control sessions log in once and each runs one transfer per round.
// --sessions fresh: every transfer logs in on a new control session and quits after it.
// Exits 1 when any transfer failed or the gateway logged a warning or an error.
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Client, HeadObjectCommand } from '@aws-sdk/client-s3';
import { formatSize, parseSize } from './pattern.ts';
import { login, retrieve, store, type Endpoint, type RawFtp } from './ftps-client.ts';
import { ROOT, startGateway, startSink, type Child } from './children.ts';
import { machineBusySeconds, cpuSeconds, memory } from './proc.ts';
import { median } from './report.ts';

const USAGE = `Usage: node bench/port-range.ts [flags]
  --gateway FILE          gateway entry point (default dist/cli.js; build with bench/snapshot.sh)
  --transfers N           concurrent transfers per round (default 500)
  --rounds N              rounds (default 5)
  --sessions reuse|fresh  one control session per transfer slot for all rounds, or a new one per transfer (default reuse)
  --min-size SIZE / --max-size SIZE   transfer sizes, spread evenly between (default 256KiB / 1MiB)
  --pasv-ports LOW-HIGH   gateway passive range (default 10100-12000)
  --workers N             gateway worker threads (default 2)
  --max-connections-per-ip N   gateway limit (default 4096; every client is 127.0.0.1)
  --timeout SECONDS       limit for one transfer (default 120)
  --quiet-wait SECONDS    before each round, wait up to this long for other processes to go quiet (default 20)
`;

interface Options {
  readonly gateway: string;
  readonly transfers: number;
  readonly rounds: number;
  readonly sessions: 'reuse' | 'fresh';
  readonly minSize: number;
  readonly maxSize: number;
  readonly pasvLow: number;
  readonly pasvHigh: number;
  readonly workers: number;
  readonly maxPerIp: number;
  readonly timeoutS: number;
  readonly quietWaitS: number;
}

/** `--name value` / `--name=value` flags of the bench scripts that have no options.ts of their own. */
export function parseFlags(argv: readonly string[], known: readonly string[], usage: string): { text: (key: string, fallback: string) => string; int: (key: string, fallback: number) => number } {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 1) {
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(argv[i] ?? '');
    const value = match?.[2] ?? argv[(i += 1)];
    if (!match || value === undefined) throw new Error(`bad argument ${argv[i - 1] ?? ''}\n${usage}`);
    if (!known.includes(match[1] ?? '')) throw new Error(`unknown flag --${match[1] ?? ''}\n${usage}`);
    values.set(match[1] ?? '', value);
  }
  return {
    text: (key, fallback) => values.get(key) ?? fallback,
    int: (key, fallback) => {
      const value = Number(values.get(key) ?? fallback);
      if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${key}: expected a whole number`);
      return value;
    },
  };
}

function parseArgs(argv: readonly string[]): Options {
  const flags = parseFlags(argv, ['gateway', 'transfers', 'rounds', 'sessions', 'min-size', 'max-size', 'pasv-ports', 'workers', 'max-connections-per-ip', 'timeout', 'quiet-wait'], USAGE);
  const range = /^(\d+)-(\d+)$/.exec(flags.text('pasv-ports', '10100-12000'));
  if (!range) throw new Error('--pasv-ports: expected LOW-HIGH');
  const sessions = flags.text('sessions', 'reuse');
  if (sessions !== 'reuse' && sessions !== 'fresh') throw new Error('--sessions: reuse or fresh');
  const minSize = parseSize(flags.text('min-size', '256KiB'));
  const maxSize = parseSize(flags.text('max-size', '1MiB'));
  if (minSize > maxSize) throw new Error('--min-size is larger than --max-size');
  return {
    gateway: path.resolve(ROOT, flags.text('gateway', 'dist/cli.js')),
    transfers: Math.max(1, flags.int('transfers', 500)),
    rounds: Math.max(1, flags.int('rounds', 5)),
    sessions,
    minSize,
    maxSize,
    pasvLow: Number(range[1]),
    pasvHigh: Number(range[2]),
    workers: Math.max(1, flags.int('workers', 2)),
    maxPerIp: flags.int('max-connections-per-ip', 4096),
    timeoutS: Math.max(1, flags.int('timeout', 120)),
    quietWaitS: flags.int('quiet-wait', 20),
  };
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** What the gateway wrote that matters here, read line by line from its stdout and stderr. */
interface GatewayLog {
  eaddrinuse: number;
  passiveFailures: number;
  warnings: number;
  samples: string[];
}

function watchGatewayLog(child: Child): GatewayLog {
  const seen: GatewayLog = { eaddrinuse: 0, passiveFailures: 0, warnings: 0, samples: [] };
  for (const stream of [child.process.stdout, child.process.stderr]) {
    let rest = '';
    stream?.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const inUse = line.includes('EADDRINUSE');
        const passive = line.includes('passive endpoint failed') || line.includes('no free passive port');
        const warning = /"level":"(warn|error|fatal)"/.test(line);
        if (inUse) seen.eaddrinuse += 1;
        if (passive) seen.passiveFailures += 1;
        if (warning) seen.warnings += 1;
        if ((inUse || passive || warning) && seen.samples.length < 5) seen.samples.push(line.slice(0, 300));
      }
    });
  }
  return seen;
}

type Kind = '425' | 'EADDRINUSE' | 'other';

function classify(message: string): Kind {
  if (/EADDRINUSE/.test(message)) return 'EADDRINUSE';
  if (/got 425\b/.test(message)) return '425';
  return 'other';
}

interface RoundResult {
  readonly round: number;
  readonly seconds: number;
  readonly uploads: number;
  readonly downloads: number;
  readonly bytes: number;
  readonly ports: number[];
  readonly errors: Array<{ kind: Kind; message: string }>;
  readonly uploadsSizeChecked: number;
  readonly downloadsPatternChecked: number;
  readonly otherCores: number;
  readonly passiveAfter: number | undefined;
}

/** Sizes spread evenly over [min, max], a different order each round. */
function sizeOf(options: Options, index: number, round: number): number {
  const span = options.maxSize - options.minSize + 1;
  return options.minSize + ((index * 7919 + round * 104_729) % options.transfers) * Math.floor(span / options.transfers);
}

/**
 * Records the port of every EPSV reply on this session. ftps-client's store/retrieve call
 * ftp.epsv() themselves, so the port is taken here rather than by changing their signatures.
 */
function recordPorts(ftp: RawFtp, ports: number[]): RawFtp {
  const epsv = ftp.epsv.bind(ftp);
  ftp.epsv = async () => {
    const port = await epsv();
    ports.push(port);
    return port;
  };
  return ftp;
}

async function passivePortsInUse(metricsUrl: string | undefined): Promise<number | undefined> {
  if (!metricsUrl) return undefined;
  const text = await (await fetch(metricsUrl)).text();
  const match = /^s3ftpd_passive_ports_in_use (\d+)/m.exec(text);
  return match ? Number(match[1]) : undefined;
}

/** Waits (at most quietWaitS) for a 2 s window in which the machine's other processes use < 0.25 core. */
export async function waitForQuiet(quietWaitS: number, ours: () => number): Promise<void> {
  const deadline = performance.now() + quietWaitS * 1000;
  // Bounded by the deadline.
  while (performance.now() < deadline) {
    const machine0 = machineBusySeconds();
    const ours0 = ours();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const others = (machineBusySeconds() - machine0 - (ours() - ours0)) / 2;
    if (others < 0.25) return;
    log(`  waiting for other processes to quieten (${others.toFixed(2)} cores busy outside the bench)`);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help')) {
    process.stdout.write(USAGE);
    return;
  }
  const options = parseArgs(argv);
  const bucket = 'bench';
  const children: Child[] = [];
  try {
    const sink = await startSink(bucket);
    children.push(sink.child);
    const gateway = await startGateway({
      script: options.gateway,
      endpoint: sink.url,
      region: 'us-east-1',
      workers: options.workers,
      partSize: 8 * 1024 * 1024,
      queueSize: 2,
      pasvPorts: `${options.pasvLow}-${options.pasvHigh}`,
      extraArgs: ['--max-connections-per-ip', String(options.maxPerIp), '--metrics', '127.0.0.1:0'],
      cpuProfDir: undefined,
    });
    children.push(gateway.child);
    const gatewayLog = watchGatewayLog(gateway.child);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const metricsUrl = /s3ftpd metrics on (http:\/\/\S+)/.exec(gateway.child.output())?.[1];
    const admin = new S3Client({
      region: 'us-east-1',
      endpoint: sink.url,
      forcePathStyle: true,
      credentials: { accessKeyId: 'bench-access-key', secretAccessKey: 'bench-secret-key' },
    });
    const endpoint: Endpoint = { host: '127.0.0.1', port: gateway.port, user: 'bench-access-key', password: 'bench-secret-key' };
    const ours = (): number => {
      const usage = process.cpuUsage();
      return (usage.user + usage.system) / 1e6 + children.reduce((sum, c) => sum + cpuSeconds(c.pid), 0);
    };
    const rangeSize = options.pasvHigh - options.pasvLow + 1;
    log(
      `gateway pid ${gateway.child.pid} on 127.0.0.1:${gateway.port}, sink ${sink.url}, passive ${options.pasvLow}-${options.pasvHigh} (${rangeSize} ports), ` +
        `${options.transfers} transfers × ${options.rounds} rounds = ${options.transfers * options.rounds} passive allocations, sessions ${options.sessions}`,
    );

    let sessions: RawFtp[] = [];
    const allPorts: number[] = [];
    if (options.sessions === 'reuse') {
      for (let i = 0; i < options.transfers; i += 50) {
        sessions.push(...(await Promise.all(Array.from({ length: Math.min(50, options.transfers - i) }, () => login(endpoint)))));
      }
      log(`${sessions.length} control sessions logged in`);
    }
    const results: RoundResult[] = [];
    let peakRss = 0;
    for (let round = 1; round <= options.rounds; round += 1) {
      await waitForQuiet(options.quietWaitS, ours);
      const machine0 = machineBusySeconds();
      const ours0 = ours();
      const ports: number[] = [];
      const errors: Array<{ kind: Kind; message: string }> = [];
      let moved = 0;
      let done = 0;
      const uploadKeys: Array<{ key: string; size: number }> = [];
      let downloads = 0;
      let downloadsOk = 0;
      const transferOptions = {
        chunk: 256 * 1024,
        verify: true,
        onBytes: (n: number) => {
          moved += n;
        },
        timeoutMs: options.timeoutS * 1000,
      };
      const started = performance.now();
      const ticker = setInterval(() => {
        peakRss = Math.max(peakRss, memory(gateway.child.pid).rss);
        log(`  round ${round}: ${done}/${options.transfers} done, ${(moved / 1024 ** 2).toFixed(0)} MiB, ${errors.length} errors, ${((performance.now() - started) / 1000).toFixed(1)} s`);
      }, 2000);
      await Promise.all(
        Array.from({ length: options.transfers }, async (_, i) => {
          const size = sizeOf(options, i, round);
          const up = (i + round) % 2 === 0;
          const key = `port-range/r${round}/${i}`;
          if (!up) downloads += 1;
          let ftp: RawFtp | undefined;
          try {
            ftp = recordPorts(options.sessions === 'reuse' ? (sessions[i] as RawFtp) : await login(endpoint), ports);
            if (up) {
              await store(ftp, `/${bucket}/${key}`, size, transferOptions);
              uploadKeys.push({ key, size });
            } else {
              // retrieve() compares every byte with the pattern and the total with the size.
              await retrieve(ftp, `/${bucket}/gen/${size}`, size, transferOptions);
              downloadsOk += 1;
            }
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            errors.push({ kind: classify(message), message: `${up ? 'STOR' : 'RETR'} #${i}: ${message}` });
            if (options.sessions === 'reuse' && ftp) {
              // A failed transfer can leave replies queued: this slot gets a clean session next round.
              ftp.destroy();
              sessions[i] = await login(endpoint).catch(() => ftp as RawFtp);
            }
          } finally {
            if (options.sessions === 'fresh') await ftp?.quit();
            done += 1;
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      clearInterval(ticker);
      peakRss = Math.max(peakRss, memory(gateway.child.pid).peak);
      const otherCores = Math.max(0, machineBusySeconds() - machine0 - (ours() - ours0)) / seconds;
      // Uploads that got their 226 (failed ones are counted already) must be stored whole.
      let sizeChecked = 0;
      await Promise.all(
        uploadKeys.map(async ({ key, size }) => {
          try {
            const head = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
            if (head.ContentLength === size) sizeChecked += 1;
            else errors.push({ kind: 'other', message: `${key}: stored ${head.ContentLength} of ${size} bytes` });
          } catch (error) {
            errors.push({ kind: 'other', message: `${key}: not stored (${error instanceof Error ? error.name : String(error)})` });
          }
        }),
      );
      // Every passive endpoint of the round must be closed again once its transfer is done.
      const passiveAfter = await passivePortsInUse(metricsUrl);
      for (const port of ports) if (port < options.pasvLow || port > options.pasvHigh) errors.push({ kind: 'other', message: `EPSV gave port ${port}, outside the range` });
      allPorts.push(...ports);
      const result: RoundResult = {
        round,
        seconds,
        uploads: options.transfers - downloads,
        downloads,
        bytes: moved,
        ports,
        errors,
        uploadsSizeChecked: sizeChecked,
        downloadsPatternChecked: downloadsOk,
        otherCores,
        passiveAfter,
      };
      results.push(result);
      log(
        `round ${round}: ${options.transfers} transfers (${result.uploads} up, ${downloads} down) in ${seconds.toFixed(2)} s, ${(moved / 1e6 / seconds).toFixed(0)} MB/s, ` +
          `ports ${Math.min(...ports)}-${Math.max(...ports)}, ${new Set(allPorts).size} distinct so far, ${errors.length} errors, passive ports open after: ${passiveAfter ?? '?'}, other load ${otherCores.toFixed(2)} cores` +
          (errors.length > 0 ? `\n    ${errors.slice(0, 5).map((e) => `[${e.kind}] ${e.message}`).join('\n    ')}` : ''),
      );
    }
    await Promise.all(sessions.map((s) => s.quit()));
    sessions = [];
    await new Promise((resolve) => setTimeout(resolve, 300));
    printTable(options, results, allPorts, gatewayLog, peakRss);
    const failures = results.reduce((n, r) => n + r.errors.length, 0) + gatewayLog.warnings + gatewayLog.eaddrinuse;
    if (failures > 0) process.exitCode = 1;
  } finally {
    for (const child of children.reverse()) await child.stop();
  }
}

function printTable(options: Options, results: readonly RoundResult[], allPorts: readonly number[], gatewayLog: GatewayLog, peakRss: number): void {
  const sum = (pick: (r: RoundResult) => number): number => results.reduce((n, r) => n + pick(r), 0);
  const count = (kind: Kind): number => sum((r) => r.errors.filter((e) => e.kind === kind).length);
  const uses = new Map<number, number>();
  for (const port of allPorts) uses.set(port, (uses.get(port) ?? 0) + 1);
  const reused = [...uses.values()].filter((n) => n > 1).length;
  const rangeSize = options.pasvHigh - options.pasvLow + 1;
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const rows: Array<[string, string]> = [
    ['transfers', `${sum((r) => r.uploads + r.downloads)} (${sum((r) => r.uploads)} STOR, ${sum((r) => r.downloads)} RETR), ${options.transfers} concurrent × ${options.rounds} rounds, sessions ${options.sessions}`],
    ['sizes', `${formatSize(options.minSize)} – ${formatSize(options.maxSize)}, ${(sum((r) => r.bytes) / 1024 ** 2).toFixed(0)} MiB moved in all`],
    ['round time, median (min – max)', `${median(results.map((r) => r.seconds)).toFixed(2)} s (${Math.min(...results.map((r) => r.seconds)).toFixed(2)} – ${Math.max(...results.map((r) => r.seconds)).toFixed(2)})`],
    ['passive allocations / range', `${allPorts.length} / ${rangeSize} ports (${options.pasvLow}-${options.pasvHigh})`],
    ['distinct ports used; used more than once', `${uses.size}; ${reused} (at most ${Math.max(0, ...uses.values())} times)`],
    ['425 replies', String(count('425'))],
    ['EADDRINUSE: client errors / gateway log lines', `${count('EADDRINUSE')} / ${gatewayLog.eaddrinuse}`],
    ['other transfer errors', String(count('other'))],
    ['gateway warn/error log lines (passive failures)', `${gatewayLog.warnings} (${gatewayLog.passiveFailures})`],
    ['downloads: every byte compared with the pattern, ok', `${sum((r) => r.downloadsPatternChecked)} / ${sum((r) => r.downloads)}`],
    ['uploads: 226 and stored size (HeadObject) equal, ok', `${sum((r) => r.uploadsSizeChecked)} / ${sum((r) => r.uploads)}`],
    ['passive ports still open after each round', results.map((r) => r.passiveAfter ?? '?').join(', ')],
    ['gateway peak RSS', `${(peakRss / 1024 ** 2).toFixed(0)} MiB`],
    ['other load (cores), median', median(results.map((r) => r.otherCores)).toFixed(2)],
  ];
  process.stdout.write(
    `\n**bench/port-range.ts · sink · ${os.cpus().length} × ${cpu} · node ${process.version} · workers ${options.workers}**\n\n` +
      `| | |\n|---|---|\n${rows.map(([k, v]) => `| ${k} | ${v} |`).join('\n')}\n\n` +
      'The sink keeps no uploaded bytes, only sizes: upload content is not compared here.\n',
  );
  if (gatewayLog.samples.length > 0) process.stdout.write(`\ngateway log samples:\n${gatewayLog.samples.join('\n')}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    log(`port-range bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  });
}
