// The protocol ceiling (issue 3, row 3): the same FTPS client code (bench/ftps-client.ts), files and
// concurrencies against the gateway on bench/s3-sink.ts and against Debian's vsftpd on local disk,
// side by side in one run. Reports MB/s and each server's CPU-seconds per GiB: the gateway process
// (worker threads included) and vsftpd with every session process it forks.
//
//   node bench/vsftpd-ceiling.ts [flags]       (node = node_modules/.bin/node, Node 24; root or sudo -n)
//   node bench/vsftpd-ceiling.ts --help
import { rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startGateway, startSink, type Child } from './children.ts';
import { login, retrieve, store, type Endpoint, type RawFtp } from './ftps-client.ts';
import { parseOptions, usage as transferUsage, type Op, type Options } from './options.ts';
import { formatSize, patternSlice } from './pattern.ts';
import { cpuSeconds, machineBusySeconds } from './proc.ts';
import { median, type PhaseResult } from './report.ts';
import { startVsftpd, type Vsftpd } from './vsftpd.ts';

const GiB = 1024 ** 3;
type Server = 'gateway' | 'vsftpd';

/** One phase; the fields shared with bench/transfer.ts mean the same there. */
interface CeilingResult extends Pick<PhaseResult, 'op' | 'concurrency' | 'run' | 'size' | 'bytes' | 'seconds' | 'mbps' | 'otherCores' | 'errors'> {
  readonly server: Server;
  /** User + system CPU of the server (gateway process, or vsftpd and its session processes) per GiB. */
  readonly serverCpuPerGiB: number;
  /** The bench process's own CPU per GiB: the FTPS clients. */
  readonly clientCpuPerGiB: number;
}

/** The server under test, as the phases see it. */
interface Target {
  readonly server: Server;
  readonly endpoint: Endpoint;
  /** FTP path of the n-th file of a phase. */
  readonly file: (op: Op, name: string, size: number) => string;
  /** Starts measuring the server's CPU; the function returned gives the seconds used since. */
  readonly cpuMeter: () => () => number;
  /** Resolves when the sessions of a finished phase are gone (vsftpd: their processes exited). */
  readonly settled: () => Promise<void>;
  /** Makes `names` downloadable (vsftpd: files on disk), and removes them afterwards. */
  readonly prepareDownloads: (names: readonly string[], size: number) => void;
  readonly cleanup: (names: readonly string[]) => void;
  readonly tlsAfterReply: boolean;
}

const EXTRA_FLAGS: ReadonlyArray<readonly [string, string]> = [
  ['--vsftpd FILE', 'vsftpd binary (default /usr/sbin/vsftpd)'],
  ['--vsftpd-dir DIR', 'where vsftpd keeps its files: the local disk under test (default the system temp dir)'],
  ['--vsftpd-pasv-ports LOW-HIGH', 'vsftpd passive range (default 13000-13999; the gateway keeps --pasv-ports)'],
];

function usage(): string {
  return (
    'Usage: node bench/vsftpd-ceiling.ts [flags]\n\nFlags of its own:\n' +
    EXTRA_FLAGS.map(([flag, help]) => `  ${flag.padEnd(38)} ${help}`).join('\n') +
    '\n\nand these of bench/transfer.ts (not --s3-endpoint or --modes; --workers takes one value):\n' +
    transferUsage().split('\n').slice(3).join('\n')
  );
}

function parse(argv: readonly string[]): { options: Options; vsftpd: string; dir: string; pasv: string } {
  const extra = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    const [flag = '', inline] = arg.split(/=(.*)/s, 2);
    if (EXTRA_FLAGS.some(([names]) => names.split(' ')[0] === flag)) {
      const value = inline ?? argv[(i += 1)];
      if (value === undefined) throw new Error(`${flag} needs a value`);
      extra.set(flag, value);
    } else if (/^--(s3-endpoint|modes|access-key|secret-key)\b/.test(arg)) {
      throw new Error(`${flag}: not used here (the gateway runs on the sink, vsftpd on local disk)`);
    } else rest.push(arg);
  }
  const options = parseOptions(rest, {});
  if (options.workers.length !== 1) throw new Error('--workers: one value here');
  const pasv = extra.get('--vsftpd-pasv-ports') ?? '13000-13999';
  if (!/^\d+-\d+$/.test(pasv)) throw new Error('--vsftpd-pasv-ports: expected LOW-HIGH');
  return { options, vsftpd: extra.get('--vsftpd') ?? '/usr/sbin/vsftpd', dir: path.resolve(extra.get('--vsftpd-dir') ?? os.tmpdir()), pasv };
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

function childCpuSeconds(child: Child): number {
  try {
    return cpuSeconds(child.pid);
  } catch {
    return 0; // exited
  }
}

/** Starts measuring every process of this bench (itself, the sink, the gateway, the vsftpd tree). */
function benchCpuMeter(children: readonly Child[], vsftpd: Vsftpd): () => number {
  const own = ownCpuSeconds();
  const before = children.map(childCpuSeconds);
  const tree = vsftpd.cpuMeter();
  return () => ownCpuSeconds() - own + children.reduce((sum, child, i) => sum + childCpuSeconds(child) - (before[i] ?? 0), 0) + tree();
}

type Meter = () => () => number;

/** Waits (at most `seconds`) for a 2 s window in which other processes keep < 0.25 core busy. */
async function waitForQuiet(seconds: number, ours: Meter): Promise<void> {
  const deadline = performance.now() + seconds * 1000;
  // Bounded by the deadline.
  while (performance.now() < deadline) {
    const machine0 = machineBusySeconds();
    const oursSince = ours();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const others = (machineBusySeconds() - machine0 - oursSince()) / 2;
    if (others < 0.25) return;
    log(`  waiting for other processes to quieten (${others.toFixed(2)} cores busy outside the bench)`);
  }
  if (seconds > 0) log(`  machine still busy after ${seconds} s: measuring anyway`);
}

async function phase(target: Target, op: Op, concurrency: number, run: number, size: number, names: readonly string[], options: Options, ours: Meter, warmup: boolean): Promise<CeilingResult> {
  const clients: RawFtp[] = [];
  for (let i = 0; i < concurrency; i += 16) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(16, concurrency - i) }, () => login(target.endpoint)))));
  }
  let moved = 0;
  const errors: string[] = [];
  const transferOptions = { chunk: options.chunk, verify: options.verify, onBytes: (n: number) => (moved += n), timeoutMs: options.timeoutS * 1000, tlsAfterReply: target.tlsAfterReply };
  await waitForQuiet(options.quietWaitS, ours);
  const label = `${op.padEnd(4)} c=${String(concurrency).padEnd(3)} ${target.server.padEnd(7)} r${run}`;
  const started = performance.now();
  const ticker = setInterval(() => log(`  ${label}  ${formatSize(moved - (moved % 1024 ** 2))} / ${formatSize(size * concurrency)}  ${(moved / 1e3 / (performance.now() - started)).toFixed(0)} MB/s`), 2000);
  const [machine0, oursSince, serverSince, client0] = [machineBusySeconds(), ours(), target.cpuMeter(), ownCpuSeconds()];
  await Promise.all(
    clients.map(async (ftp, i) => {
      const file = target.file(op, names[i] ?? '', size);
      try {
        await (op === 'up' ? store(ftp, file, size, transferOptions) : retrieve(ftp, file, size, transferOptions));
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const [serverCpu, clientCpu] = [serverSince(), ownCpuSeconds() - client0];
  const otherCores = Math.max(0, machineBusySeconds() - machine0 - oursSince()) / seconds;
  clearInterval(ticker);
  if (op === 'up') {
    // Every upload must be stored whole: asked of the server itself, the same way for both.
    await Promise.all(
      clients.map(async (ftp, i) => {
        const file = target.file(op, names[i] ?? '', size);
        const reply = await ftp.send(`SIZE ${file}`);
        if (reply.text !== `213 ${size}`) errors.push(`${file}: SIZE answered ${reply.text}, expected 213 ${size}`);
      }),
    );
  }
  await Promise.all(clients.map((ftp) => ftp.quit()));
  await target.settled();
  const gib = moved / GiB;
  const result: CeilingResult = { server: target.server, op, concurrency, run, size, bytes: moved, seconds, mbps: moved / 1e6 / seconds, serverCpuPerGiB: serverCpu / gib, clientCpuPerGiB: clientCpu / gib, otherCores, errors };
  log(
    `${warmup ? 'warm-up ' : ''}${label}: ${formatSize(moved)} in ${seconds.toFixed(2)} s = ${result.mbps.toFixed(1)} MB/s, ${result.serverCpuPerGiB.toFixed(2)} server CPU-s/GiB, ` +
      `client ${result.clientCpuPerGiB.toFixed(2)}, other processes ${otherCores.toFixed(2)} cores${errors.length > 0 ? `, ${errors.length} ERRORS: ${errors.slice(0, 3).join(' | ')}` : ''}`,
  );
  return result;
}

/** Uploads on both servers, then downloads; the order of the servers alternates between runs. */
async function round(targets: readonly Target[], options: Options, concurrency: number, run: number, total: number, ours: Meter, warmup: boolean): Promise<CeilingResult[]> {
  const results: CeilingResult[] = [];
  const ordered = run % 2 === 1 ? targets : [...targets].reverse();
  const size = Math.floor(total / concurrency);
  const names = Array.from({ length: concurrency }, (_, i) => `c${concurrency}-r${run}${warmup ? '-warmup' : ''}-${i}`);
  try {
    for (const op of options.ops) {
      for (const target of ordered) {
        if (op === 'down' && !options.ops.includes('up')) target.prepareDownloads(names, size);
        results.push(await phase(target, op, concurrency, run, size, names, options, ours, warmup));
      }
    }
  } finally {
    for (const target of targets) target.cleanup(names);
  }
  return results;
}

/** Waits (at most 10 s) until vsftpd has no session process left, so none ends during the next phase. */
async function sessionsGone(vsftpd: Vsftpd): Promise<void> {
  for (let i = 0; i < 100 && vsftpd.processes() > 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 100));
  if (vsftpd.processes() > 0) log(`  vsftpd still has ${vsftpd.processes()} session processes 10 s after QUIT`);
}

/** Writes pattern files for vsftpd to serve when no upload phase made them. */
function writePatternFile(file: string, size: number): void {
  const fd = openSync(file, 'w', 0o644);
  try {
    for (let offset = 0; offset < size; ) offset += writeSync(fd, patternSlice(offset, size - offset));
  } finally {
    closeSync(fd);
  }
}

function render(results: readonly CeilingResult[], title: string): string {
  const ok = (r: CeilingResult): boolean => r.errors.length === 0;
  const keys = [...new Set(results.map((r) => `${r.op}|${r.concurrency}|${r.server}`))];
  const lines = [
    `**${title}**`,
    '',
    '| op | conc. | per transfer | server | MB/s | server CPU-s/GiB | FTPS client CPU-s/GiB | gateway/vsftpd MB/s | gateway/vsftpd CPU-s/GiB | other load | runs ok |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const key of keys) {
    const all = results.filter((r) => `${r.op}|${r.concurrency}|${r.server}` === key);
    const good = all.filter(ok);
    const first = all[0];
    if (!first) continue;
    const m = (pick: (r: CeilingResult) => number, rows = good): string => (rows.length > 0 ? median(rows.map(pick)).toFixed(2) : '–');
    let ratios = ['–', '–'];
    if (first.server === 'gateway') {
      const pairs = good.flatMap((g) => results.filter((v) => ok(v) && v.server === 'vsftpd' && v.op === g.op && v.concurrency === g.concurrency && v.run === g.run).map((v) => [g, v] as const));
      if (pairs.length > 0) ratios = [median(pairs.map(([g, v]) => g.mbps / v.mbps)).toFixed(2), median(pairs.map(([g, v]) => g.serverCpuPerGiB / v.serverCpuPerGiB)).toFixed(2)];
    }
    const mbps = good.length > 0 ? median(good.map((r) => r.mbps)).toFixed(0) : '–';
    const server = first.server === 'gateway' ? 'FTPS → gateway → sink' : 'FTPS → vsftpd → disk';
    lines.push(`| ${first.op} | ${first.concurrency} | ${formatSize(first.size)} | ${server} | ${mbps} | ${m((r) => r.serverCpuPerGiB)} | ${m((r) => r.clientCpuPerGiB)} | ${ratios[0]} | ${ratios[1]} | ${m((r) => r.otherCores)} | ${good.length}/${all.length} |`);
  }
  lines.push(
    '',
    'MB/s = 10^6 bytes/s over all concurrent transfers. Server CPU-s/GiB = user+sys seconds per 2^30 bytes of the gateway process (worker threads included), ' +
      'or of vsftpd with all its session processes (run time of each process of its tree from /proc/PID/schedstat). Ratios = medians of per-run ratios of phases run back to back. ' +
      'Other load = cores used by processes outside the bench during the phase (median).',
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage());
    return;
  }
  const { options, vsftpd: binary, dir, pasv } = parse(argv);
  const children: Child[] = [];
  let vsftpd: Vsftpd | undefined;
  try {
    const sink = await startSink('bench');
    children.push(sink.child);
    const gateway = await startGateway({ script: options.gateway, endpoint: sink.url, region: options.region, workers: options.workers[0] ?? 2, partSize: options.partSize, queueSize: options.queueSize, pasvPorts: options.pasvPorts, extraArgs: options.gatewayArgs, cpuProfDir: undefined });
    children.push(gateway.child);
    vsftpd = await startVsftpd({ binary, baseDir: dir, pasvPorts: pasv });
    const server = vsftpd;
    log(`gateway pid ${gateway.child.pid} on 127.0.0.1:${gateway.port} (sink ${sink.url}); vsftpd pid ${server.pid} on 127.0.0.1:${server.port}, files in ${server.uploadDir}`);
    const ours: Meter = () => benchCpuMeter(children, server);
    const targets: Target[] = [
      {
        server: 'gateway',
        endpoint: { host: '127.0.0.1', port: gateway.port, user: options.accessKeyId, password: options.secretAccessKey },
        // The sink discards uploads and generates `gen/SIZE` objects for downloads.
        file: (op, name, size) => (op === 'up' ? `/bench/${name}` : `/bench/gen/${size}`),
        cpuMeter: () => {
          const before = cpuSeconds(gateway.child.pid);
          return () => cpuSeconds(gateway.child.pid) - before;
        },
        settled: () => Promise.resolve(),
        prepareDownloads: () => undefined,
        cleanup: () => undefined,
        tlsAfterReply: true,
      },
      {
        server: 'vsftpd',
        endpoint: { host: '127.0.0.1', port: server.port, user: 'anonymous', password: 'bench@' },
        file: (_op, name) => `${server.ftpDir}/${name}`,
        cpuMeter: server.cpuMeter,
        settled: () => sessionsGone(server),
        prepareDownloads: (names, size) => names.forEach((name) => writePatternFile(path.join(server.uploadDir, name), size)),
        cleanup: (names) => names.forEach((name) => rmSync(path.join(server.uploadDir, name), { force: true })),
        tlsAfterReply: true,
      },
    ];
    if (options.warmup > 0) await round(targets, options, Math.min(4, Math.max(...options.concurrency)), 1, options.warmup, ours, true);
    const results: CeilingResult[] = [];
    for (const concurrency of options.concurrency) {
      for (let run = 1; run <= options.runs; run += 1) results.push(...(await round(targets, options, concurrency, run, options.totalUp, ours, false)));
    }
    if (options.json) writeFileSync(options.json, `${JSON.stringify({ options: { ...options, secretAccessKey: '(not written)' }, vsftpdDir: dir, results }, null, 2)}\n`);
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    const title = `gateway (workers ${options.workers[0]}) on bench/s3-sink.ts vs vsftpd on local disk (${dir}) · ${os.cpus().length} × ${cpu} · node ${process.version} · runs ${options.runs} (medians) · ${formatSize(options.totalUp)} per phase · client writes ${formatSize(options.chunk)}`;
    process.stdout.write(`\n${render(results, title)}\n`);
    const failed = results.filter((r) => r.errors.length > 0).length;
    if (failed > 0) {
      log(`${failed} phase(s) had errors; they are left out of the medians`);
      process.exitCode = 1;
    }
  } finally {
    await vsftpd?.stop();
    for (const child of children.reverse()) await child.stop();
  }
}

main().catch((error: unknown) => {
  log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
