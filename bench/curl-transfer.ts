// Gateway cost by client, at full speed and paced (issue 11): N concurrent curl 7.88 processes
// (ClientHello first on every data connection) or the bench's own FTPS client (bench/ftps-client.ts),
// uploading and downloading through the built gateway. Reports the gateway process's CPU-s per GiB
// (/proc, worker threads included) and MB/s, medians of --runs; paced rows (every client held to
// --rate bytes/s) also print their ratio to the full-speed row of the same run (target ≤ 1.25).
//
//   node bench/curl-transfer.ts [flags]       (node = node_modules/.bin/node, Node 24; --help)
//
// Gateway variants run side by side in one job: every --variant gets a gateway of its own (started
// together, passive range split between them), and each round runs the variants in alternating
// order, e.g. --variant node=--tls-engine=node --variant native=--tls-engine=native.
// Without --s3-endpoint the S3 side is bench/s3-sink.ts; with an https endpoint (radosgw started
// with RGW_SSL_PORT) the gateway gets NODE_EXTRA_CA_CERTS=--s3-ca.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { S3Client, CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { formatSize, parseSize } from './pattern.ts';
import { cpuSeconds, machineBusySeconds, pidsNamed } from './proc.ts';
import { login, retrieve, store, type RawFtp } from './ftps-client.ts';
import { ROOT, startGateway, startSink, type Child } from './children.ts';
import { childrenSeconds, curlTransfer, writePatternFile } from './curl-client.ts';
import { renderTable, type Client, type Op, type Phase, type Result } from './curl-report.ts';

const GiB = 1024 ** 3;
interface Variant {
  readonly label: string;
  readonly args: readonly string[];
}

const FLAGS: ReadonlyArray<readonly [string, string, string | undefined]> = [
  ['--clients', 'curl,bench: who transfers', 'curl'],
  ['--ops', 'up,down', 'up,down'],
  ['--concurrency', 'full-speed concurrent transfers, LIST', '1,16'],
  ['--rate', 'paced rows: bytes/s per client (curl --limit-rate; 25MiB = curl 25M), 0 = none', '25MiB'],
  ['--paced-concurrency', 'concurrent transfers of the paced rows, LIST', '16'],
  ['--total', 'bytes per phase, split over its transfers', '1GiB'],
  ['--warmup', 'untimed bytes each way per variant and client first, 0 = none', '128MiB'],
  ['--runs', 'repetitions (medians)', '3'],
  ['--variant', 'LABEL=GATEWAY-ARGS (space-separated), repeatable; default one gateway without extra args', undefined],
  ['--gateway', 'gateway entry point', 'dist/cli.js'],
  ['--gateway-arg', 'flag for every variant, repeatable', undefined],
  ['--gateway-node-arg', 'node flag for the gateway, repeatable', undefined],
  ['--workers', 'gateway --workers', '2'],
  ['--pasv-ports', 'LOW-HIGH, split between the variants', '16000-16999'],
  ['--s3-endpoint', 'http(s)://127.x.x.x:PORT instead of the sink (keys: $S3FTPD_TEST_ACCESS_KEY / _SECRET_KEY)', undefined],
  ['--s3-ca', 'PEM the https endpoint is signed with (NODE_EXTRA_CA_CERTS of the gateway)', undefined],
  ['--quiet-wait', 'seconds to wait for a quiet machine before each phase', '30'],
  ['--timeout', 'seconds per phase', '600'],
  ['--json', 'also write the results here', undefined],
];
const REPEATED = new Set(['--variant', '--gateway-arg', '--gateway-node-arg']);

function parse(argv: readonly string[]): { get: (flag: string) => string; all: (flag: string) => string[]; has: (flag: string) => boolean } {
  const values = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i += 1) {
    const match = /^(--[a-z0-9-]+)(?:=(.*))?$/s.exec(argv[i] ?? '');
    const flag = match?.[1] ?? '';
    if (!FLAGS.some(([name]) => name === flag)) throw new Error(`unknown argument ${argv[i]}; see --help`);
    const value = match?.[2] ?? argv[(i += 1)];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (values.has(flag) && !REPEATED.has(flag)) throw new Error(`${flag} given twice`);
    values.set(flag, [...(values.get(flag) ?? []), value]);
  }
  const fallback = (flag: string): string | undefined => FLAGS.find(([name]) => name === flag)?.[2];
  return {
    get: (flag) => values.get(flag)?.[0] ?? fallback(flag) ?? '',
    all: (flag) => values.get(flag) ?? [],
    has: (flag) => values.has(flag),
  };
}

const list = (text: string): string[] => text.split(',').map((s) => s.trim()).filter((s) => s !== '');
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Gateway {
  readonly variant: Variant;
  readonly child: Child;
  readonly port: number;
}

interface Bench {
  readonly bucket: string;
  readonly admin: S3Client;
  readonly usingSink: boolean;
  readonly user: string;
  readonly password: string;
  readonly tmp: string;
  readonly files: Map<number, string>;
  readonly gateways: readonly Gateway[];
  readonly storePids: readonly number[];
  readonly quietWaitS: number;
  readonly timeoutS: number;
}

function sum(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += cpuSeconds(pid);
    } catch {
      // exited
    }
  }
  return total;
}

/** CPU seconds of every process of this bench: itself, its reaped curls, gateways, the S3 side. */
function oursSeconds(bench: Bench): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6 + childrenSeconds() + sum(bench.gateways.map((g) => g.child.pid)) + sum(bench.storePids);
}

async function waitForQuiet(bench: Bench): Promise<void> {
  const deadline = performance.now() + bench.quietWaitS * 1000;
  // Bounded by the deadline.
  while (performance.now() < deadline) {
    const machine0 = machineBusySeconds();
    const ours0 = oursSeconds(bench);
    await sleep(2000);
    const others = (machineBusySeconds() - machine0 - (oursSeconds(bench) - ours0)) / 2;
    if (others < 0.25) return;
    log(`  ${others.toFixed(2)} cores busy outside the bench: waiting`);
  }
}

function uploadFile(bench: Bench, size: number): string {
  let file = bench.files.get(size);
  if (file === undefined) {
    file = path.join(bench.tmp, `up-${size}`);
    writePatternFile(file, size);
    bench.files.set(size, file);
  }
  return file;
}

/** One transfer: by the logged-in bench client `ftp`, or else by a curl process. */
async function transferOne(bench: Bench, port: number, phase: Phase, key: string, ftp: RawFtp | undefined, file: string | undefined): Promise<void> {
  const timeoutS = bench.timeoutS;
  if (ftp) {
    const options = { chunk: 256 * 1024, verify: false, onBytes: (): void => undefined, timeoutMs: timeoutS * 1000, rate: phase.rate || undefined };
    const target = `/${bench.bucket}/${key}`;
    await (phase.op === 'up' ? store(ftp, target, phase.size, options) : retrieve(ftp, target, phase.size, options));
    return;
  }
  const url = `ftp://127.0.0.1:${port}/${bench.bucket}/${key}`;
  await curlTransfer({ op: phase.op, url, user: bench.user, password: bench.password, file, size: phase.size, rate: phase.rate, timeoutS });
}

/** One phase: `concurrency` transfers of `keys` at once through one gateway, measured from /proc. */
async function runPhase(bench: Bench, gateway: Gateway, phase: Phase, keys: readonly string[], warmup: boolean): Promise<Result> {
  const errors: string[] = [];
  const file = phase.client === 'curl' && phase.op === 'up' ? uploadFile(bench, phase.size) : undefined;
  const endpoint = { host: '127.0.0.1', port: gateway.port, user: bench.user, password: bench.password };
  const ftps = phase.client === 'bench' ? await Promise.all(keys.map(() => login(endpoint))) : [];
  if (!warmup) await waitForQuiet(bench);
  const t0 = performance.now();
  const self0 = process.cpuUsage();
  const [kids0, machine0, ours0, cpu0, store0] = [childrenSeconds(), machineBusySeconds(), oursSeconds(bench), cpuSeconds(gateway.child.pid), sum(bench.storePids)];
  await Promise.all(
    keys.map((key, i) =>
      transferOne(bench, gateway.port, phase, key, ftps[i], file).catch((error: unknown) => {
        errors.push(error instanceof Error ? error.message : String(error));
      }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(self0);
  const gib = (phase.size * keys.length) / GiB;
  const clientCpu = phase.client === 'curl' ? childrenSeconds() - kids0 : (self.user + self.system) / 1e6;
  const result: Result = {
    ...phase,
    mbps: (phase.size * keys.length) / 1e6 / seconds,
    cpuPerGiB: (cpuSeconds(gateway.child.pid) - cpu0) / gib,
    clientCpuPerGiB: clientCpu / gib,
    storeCpuPerGiB: bench.storePids.length > 0 ? (sum(bench.storePids) - store0) / gib : undefined,
    otherCores: Math.max(0, machineBusySeconds() - machine0 - (oursSeconds(bench) - ours0)) / seconds,
    errors,
  };
  await Promise.all(ftps.map((ftp) => ftp.quit()));
  if (phase.op === 'up' && errors.length === 0) {
    for (const key of keys) {
      const head = await bench.admin.send(new HeadObjectCommand({ Bucket: bench.bucket, Key: key })).catch(() => undefined);
      if (head?.ContentLength !== phase.size) errors.push(`${key}: stored ${head?.ContentLength ?? 'nothing'} of ${phase.size} bytes`);
    }
  }
  logPhase(result, seconds, warmup);
  return result;
}

function logPhase(r: Result, seconds: number, warmup: boolean): void {
  const rate = r.rate > 0 ? ` at ${(r.rate / 1e6).toFixed(1)} MB/s each` : '';
  log(
    `${warmup ? 'warm-up ' : ''}${r.variant} ${r.client} ${r.op} c=${r.concurrency}${rate} r${r.run}: ${formatSize(r.size * r.concurrency)} in ${seconds.toFixed(2)} s = ` +
      `${r.mbps.toFixed(0)} MB/s, gateway ${r.cpuPerGiB.toFixed(2)} CPU-s/GiB, client ${r.clientCpuPerGiB.toFixed(2)}, other load ${r.otherCores.toFixed(2)}` +
      (r.errors.length > 0 ? `, ${r.errors.length} ERRORS: ${r.errors.slice(0, 2).join(' | ')}` : ''),
  );
}

/** Upload then download (of what was uploaded, or of the sink's generated objects), each variant in turn. */
async function runRound(bench: Bench, spec: Omit<Phase, 'op' | 'variant' | 'size'>, total: number, ops: readonly Op[], warmup: boolean): Promise<Result[]> {
  const results: Result[] = [];
  const size = Math.floor(total / spec.concurrency);
  const order = spec.run % 2 === 1 ? bench.gateways : [...bench.gateways].reverse();
  for (const gateway of order) {
    const phase = { ...spec, variant: gateway.variant.label, size };
    const prefix = `${randomBytes(4).toString('hex')}-${spec.client}-c${spec.concurrency}`;
    const keys = Array.from({ length: spec.concurrency }, (_, i) => `${prefix}-${i}`);
    try {
      if (ops.includes('up')) results.push(await runPhase(bench, gateway, { ...phase, op: 'up' }, keys, warmup));
      if (ops.includes('down')) results.push(await runPhase(bench, gateway, { ...phase, op: 'down' }, bench.usingSink ? keys.map(() => `gen/${size}`) : keys, warmup));
    } finally {
      if (!bench.usingSink && ops.includes('up')) await bench.admin.send(new DeleteObjectsCommand({ Bucket: bench.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
    }
  }
  return warmup ? [] : results;
}

function variantsOf(specs: readonly string[]): Variant[] {
  if (specs.length === 0) return [{ label: 'default', args: [] }];
  return specs.map((spec) => {
    const at = spec.indexOf('=');
    if (at <= 0) throw new Error(`--variant ${spec}: expected LABEL=ARGS`);
    return { label: spec.slice(0, at), args: spec.slice(at + 1).split(' ').filter((a) => a !== '') };
  });
}

/** Splits LOW-HIGH into `n` disjoint ranges, one per gateway. */
function splitPorts(range: string, n: number): string[] {
  const [low, high] = range.split('-').map(Number);
  if (low === undefined || high === undefined || !(high - low + 1 >= n * 8)) throw new Error(`--pasv-ports ${range}: need at least 8 ports per variant`);
  const width = Math.floor((high - low + 1) / n);
  return Array.from({ length: n }, (_, i) => `${low + i * width}-${low + (i + 1) * width - 1}`);
}

interface Settings {
  readonly flags: ReturnType<typeof parse>;
  readonly clients: readonly Client[];
  readonly ops: readonly Op[];
  readonly rows: ReadonlyArray<{ concurrency: number; rate: number }>;
  readonly endpoint: string | undefined;
  readonly variants: readonly Variant[];
  readonly user: string;
  readonly password: string;
}

function settingsFrom(argv: readonly string[]): Settings {
  const flags = parse(argv);
  const oneOf = <T extends string>(flag: string, allowed: readonly T[]): T[] =>
    list(flags.get(flag)).map((item) => {
      const found = allowed.find((a) => a === item);
      if (found === undefined) throw new Error(`${flag}: unknown ${item}`);
      return found;
    });
  const numbers = (flag: string): number[] => list(flags.get(flag)).map((n) => Math.max(1, Math.floor(Number(n)) || 1));
  const rate = parseSize(flags.get('--rate'));
  const ops = oneOf<Op>('--ops', ['up', 'down']);
  const endpoint = flags.has('--s3-endpoint') ? flags.get('--s3-endpoint') : undefined;
  if (endpoint !== undefined && !/^https?:\/\/127\.\d+\.\d+\.\d+:\d+\/?$/.test(endpoint)) throw new Error('--s3-endpoint: expected http(s)://127.x.x.x:PORT');
  if (endpoint !== undefined && !ops.includes('up')) throw new Error('--s3-endpoint needs --ops with up: downloads read what was uploaded');
  const ca = flags.has('--s3-ca') ? flags.get('--s3-ca') : endpoint?.startsWith('https:') ? process.env.S3FTPD_TEST_S3_CA : undefined;
  if (ca !== undefined) {
    // The gateway (spawned with this environment) and this process's admin client trust it.
    process.env.NODE_EXTRA_CA_CERTS = path.resolve(ca);
    tls.setDefaultCACertificates([...tls.getCACertificates('default'), readFileSync(ca, 'utf8')]);
  }
  const user = endpoint ? (process.env.S3FTPD_TEST_ACCESS_KEY ?? '') : 'bench-access-key';
  const password = endpoint ? (process.env.S3FTPD_TEST_SECRET_KEY ?? '') : 'bench-secret-key';
  if (!user || !password) throw new Error('--s3-endpoint needs S3FTPD_TEST_ACCESS_KEY and S3FTPD_TEST_SECRET_KEY');
  return {
    flags,
    clients: oneOf<Client>('--clients', ['curl', 'bench']),
    ops,
    rows: [
      ...numbers('--concurrency').map((concurrency) => ({ concurrency, rate: 0 })),
      ...(rate > 0 ? numbers('--paced-concurrency').map((concurrency) => ({ concurrency, rate })) : []),
    ],
    endpoint,
    variants: variantsOf(flags.all('--variant')),
    user,
    password,
  };
}

/** One gateway per variant, all on `endpoint`, each on its own share of the passive range. */
async function startGateways(settings: Settings, endpoint: string, region: string, children: Child[]): Promise<Gateway[]> {
  const { flags, variants } = settings;
  const ports = splitPorts(flags.get('--pasv-ports'), variants.length);
  const gateways: Gateway[] = [];
  for (const [i, variant] of variants.entries()) {
    const { child, port } = await startGateway({
      script: path.resolve(ROOT, flags.get('--gateway')),
      endpoint,
      region,
      workers: Number(flags.get('--workers')),
      partSize: 8 * 1024 * 1024,
      queueSize: 2,
      pasvPorts: ports[i] ?? '',
      extraArgs: [...flags.all('--gateway-arg'), ...variant.args],
      nodeArgs: flags.all('--gateway-node-arg'),
      cpuProfDir: undefined,
    });
    children.push(child);
    gateways.push({ variant, child, port });
    log(`gateway ${variant.label} (${variant.args.join(' ') || 'no extra args'}): pid ${child.pid}, 127.0.0.1:${port}, passive ${ports[i]}, S3 ${endpoint}`);
  }
  return gateways;
}

/** The gateway's own warnings (e.g. a data TLS engine that fell back to Node's), which can void a comparison. */
function warnings(gateway: Gateway): void {
  const lines = gateway.child.output().split('\n').filter((l) => /"level":"(warn|error)"/.test(l) && !l.includes('self-signed'));
  for (const line of [...new Set(lines.map((l) => l.replace(/"time":"[^"]*",/, '')))].slice(0, 5)) log(`gateway ${gateway.variant.label} said: ${line}`);
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    process.stdout.write(`Usage: node bench/curl-transfer.ts [flags]\n\n${FLAGS.map(([f, h, d]) => `  ${f.padEnd(22)} ${h}${d ? ` (default ${d})` : ''}`).join('\n')}\n`);
    return;
  }
  const settings = settingsFrom(process.argv.slice(2));
  const { flags, user, password } = settings;
  const bucket = settings.endpoint ? `curl-bench-${Date.now().toString(36)}` : 'bench';
  const children: Child[] = [];
  const tmp = mkdtempSync(path.join(os.tmpdir(), 's3ftpd-curl-bench-'));
  let admin: S3Client | undefined;
  try {
    let endpoint = settings.endpoint;
    if (endpoint === undefined) {
      const sink = await startSink(bucket);
      children.push(sink.child);
      endpoint = sink.url;
    }
    const region = process.env.S3FTPD_TEST_REGION ?? 'us-east-1';
    admin = new S3Client({
      region,
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: user, secretAccessKey: password },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    if (settings.endpoint) await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    const gateways = await startGateways(settings, endpoint, region, children);
    const storePids = settings.endpoint ? pidsNamed(['radosgw', 'ceph-osd', 'ceph-mon']) : children.slice(0, 1).map((c) => c.pid);
    const bench: Bench = { bucket, admin, usingSink: !settings.endpoint, user, password, tmp, files: new Map(), gateways, storePids, quietWaitS: Number(flags.get('--quiet-wait')), timeoutS: Number(flags.get('--timeout')) };
    const results: Result[] = [];
    const warmup = parseSize(flags.get('--warmup'));
    for (const client of settings.clients) {
      if (warmup > 0) await runRound(bench, { client, concurrency: 4, rate: 0, run: 1 }, warmup, settings.ops, true);
      for (let run = 1; run <= Number(flags.get('--runs')); run += 1) {
        for (const row of settings.rows) results.push(...(await runRound(bench, { client, ...row, run }, parseSize(flags.get('--total')), settings.ops, false)));
      }
    }
    for (const g of gateways) warnings(g);
    if (flags.has('--json')) writeFileSync(flags.get('--json'), `${JSON.stringify({ argv: process.argv.slice(2), results }, null, 2)}\n`);
    const title = `curl-transfer · ${settings.endpoint ?? 'bench/s3-sink.ts'} · ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'} · node ${process.version} · runs ${flags.get('--runs')} (medians) · workers ${flags.get('--workers')}`;
    process.stdout.write(`\n${renderTable(results, title)}\n`);
    if (results.some((r) => r.errors.length > 0)) process.exitCode = 1;
  } finally {
    if (admin && settings.endpoint) await admin.send(new DeleteBucketCommand({ Bucket: bucket })).catch((error: unknown) => log(`could not delete bucket ${bucket}: ${String(error)}`));
    for (const child of children.reverse()) await child.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  log(`curl-transfer failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
