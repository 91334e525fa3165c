// Bulk transfer bench (issue 3, rows 1 and 2): FTPS uploads (STOR) and downloads (RETR) through the
// built gateway, and the same bytes moved directly with the AWS SDK, at several concurrencies.
// Reports MB/s, CPU-seconds per GiB and peak RSS of the process doing the work, medians of --runs.
//
//   node bench/transfer.ts [flags]            (node = node_modules/.bin/node, Node 24)
//   node bench/transfer.ts --help
//
// Without --s3-endpoint it starts bench/s3-sink.ts, which discards uploads and generates downloads,
// so the gateway's own cost is measured. With --s3-endpoint (e.g. radosgw) it creates a bucket,
// downloads what this run uploaded, and deletes everything it wrote.
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  S3Client,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
} from '@aws-sdk/client-s3';
import { formatSize } from './pattern.ts';
import { cpuSeconds, machineBusySeconds, memory, pidsNamed, resetPeak } from './proc.ts';
import { login, retrieve, store, type RawFtp } from './ftps-client.ts';
import { startAgent, startGateway, startSink, type Agent, type Child } from './children.ts';
import { parseOptions, usage, type Mode, type Op, type Options } from './options.ts';
import { renderTable, type PhaseResult } from './report.ts';

const GiB = 1024 ** 3;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

interface Setup {
  readonly options: Options;
  readonly endpoint: string;
  readonly usingSink: boolean;
  readonly bucket: string;
  readonly admin: S3Client;
  /** The S3 server's processes: the sink, or radosgw and its Ceph daemons (measured, never touched). */
  readonly storePids: readonly number[];
  readonly agent: Agent | undefined;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly runId: string;
  /** PIDs of the child processes alive now. */
  readonly pids: () => number[];
}

interface Measured {
  readonly pid: number | undefined;
  /** CPU seconds of every bench process (this one, sink, gateway, agent) and of the machine. */
  readonly ours: number;
  readonly machine: number;
  readonly rssStart: number;
  readonly cpu: number;
  readonly storeCpu: number | undefined;
  readonly clientCpu: number;
  readonly at: number;
  readonly peakReset: boolean;
}

/** CPU seconds used so far by the processes of this bench. */
function oursSeconds(setup: Setup): number {
  const usage = process.cpuUsage();
  let total = (usage.user + usage.system) / 1e6;
  for (const pid of [...setup.pids(), ...setup.storePids.filter((p) => !setup.pids().includes(p))]) {
    try {
      total += cpuSeconds(pid);
    } catch {
      // exited
    }
  }
  return total;
}

/**
 * Waits (at most --quiet-wait seconds) for a 2 s window in which processes outside this bench keep
 * less than 0.25 of a core busy, so phases run when the (shared) machine is quiet.
 */
async function waitForQuiet(setup: Setup): Promise<void> {
  const deadline = performance.now() + setup.options.quietWaitS * 1000;
  let warned = false;
  // Bounded by the deadline.
  while (performance.now() < deadline) {
    const machine0 = machineBusySeconds();
    const ours0 = oursSeconds(setup);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const others = (machineBusySeconds() - machine0 - (oursSeconds(setup) - ours0)) / 2;
    if (others < 0.25) return;
    if (!warned) log(`  waiting for other processes to quieten (${others.toFixed(2)} cores busy outside the bench)`);
    warned = true;
  }
  if (setup.options.quietWaitS > 0) log(`  machine still busy after ${setup.options.quietWaitS} s: measuring anyway`);
}

/** CPU seconds of the S3 server's processes, or undefined when none is known. */
function storeSeconds(setup: Setup): number | undefined {
  if (setup.storePids.length === 0) return undefined;
  let total = 0;
  for (const pid of setup.storePids) {
    try {
      total += cpuSeconds(pid);
    } catch {
      return undefined;
    }
  }
  return total;
}

function startMeasure(setup: Setup, pid: number | undefined): Measured {
  const peakReset = pid !== undefined && resetPeak(pid);
  const usage = process.cpuUsage();
  return {
    pid,
    ours: oursSeconds(setup),
    machine: machineBusySeconds(),
    rssStart: pid !== undefined ? memory(pid).rss : 0,
    cpu: pid !== undefined ? cpuSeconds(pid) : 0,
    storeCpu: storeSeconds(setup),
    clientCpu: (usage.user + usage.system) / 1e6,
    at: performance.now(),
    peakReset,
  };
}

/** Prints progress every 2 s while a phase runs. */
function ticker(label: string, total: number, moved: () => number): () => void {
  const started = performance.now();
  const timer = setInterval(() => {
    const bytes = moved();
    const seconds = (performance.now() - started) / 1000;
    log(`  ${label}  ${formatSize(bytes - (bytes % (1024 * 1024)))} / ${formatSize(total)}  ${(bytes / 1e6 / seconds).toFixed(0)} MB/s`);
  }, 2000);
  return () => clearInterval(timer);
}

/** What a phase is (the identifying fields of its result), plus how to run it. */
interface PhaseSpec extends Pick<PhaseResult, 'workers' | 'op' | 'mode' | 'concurrency' | 'run' | 'size'> {
  readonly keys: readonly string[];
  readonly warmup: boolean;
}

function finish(setup: Setup, spec: PhaseSpec, start: Measured, bytes: number, wallMs: number, errors: string[], clientIsBench: boolean): PhaseResult {
  const seconds = wallMs / 1000;
  const usage = process.cpuUsage();
  const gib = bytes / GiB;
  const serverCpu = start.pid !== undefined ? cpuSeconds(start.pid) - start.cpu : 0;
  const clientCpu = (usage.user + usage.system) / 1e6 - start.clientCpu;
  const storeNow = storeSeconds(setup);
  const storeCpu = storeNow !== undefined && start.storeCpu !== undefined ? storeNow - start.storeCpu : undefined;
  const peak = start.pid !== undefined ? memory(start.pid).peak : 0;
  const others = Math.max(0, machineBusySeconds() - start.machine - (oursSeconds(setup) - start.ours)) / seconds;
  const result: PhaseResult = {
    workers: spec.workers,
    op: spec.op,
    mode: spec.mode,
    concurrency: spec.concurrency,
    run: spec.run,
    size: spec.size,
    bytes,
    seconds,
    mbps: bytes / 1e6 / seconds,
    cpuPerGiB: gib > 0 ? serverCpu / gib : 0,
    clientCpuPerGiB: clientIsBench && gib > 0 ? clientCpu / gib : undefined,
    storeCpuPerGiB: storeCpu !== undefined && gib > 0 ? storeCpu / gib : undefined,
    peakRss: peak,
    peakSinceStart: !start.peakReset,
    rssStart: start.rssStart,
    otherCores: others,
    errors,
  };
  const tag = `${spec.op.padEnd(4)} c=${String(spec.concurrency).padEnd(3)} ${spec.mode.padEnd(7)} w=${spec.workers}`;
  log(
    `${spec.warmup ? 'warm-up ' : ''}${tag} run ${spec.run}: ${formatSize(bytes)} in ${seconds.toFixed(2)} s = ${result.mbps.toFixed(1)} MB/s, ` +
      `${result.cpuPerGiB.toFixed(2)} CPU-s/GiB, peak RSS ${(peak / 1024 ** 2).toFixed(0)} MiB (${(start.rssStart / 1024 ** 2).toFixed(0)} at start), other processes ${others.toFixed(2)} cores` +
      (errors.length > 0 ? `, ${errors.length} ERRORS: ${errors.slice(0, 3).join(' | ')}` : ''),
  );
  return result;
}

async function gatewayPhase(setup: Setup, gateway: { child: Child; port: number }, spec: PhaseSpec): Promise<PhaseResult> {
  const { options } = setup;
  const endpoint = { host: '127.0.0.1', port: gateway.port, user: setup.accessKeyId, password: setup.secretAccessKey };
  const clients: RawFtp[] = [];
  for (let i = 0; i < spec.concurrency; i += 16) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(16, spec.concurrency - i) }, () => login(endpoint)))));
  }
  let moved = 0;
  const errors: string[] = [];
  const transferOptions = {
    chunk: options.chunk,
    verify: options.verify,
    onBytes: (n: number) => {
      moved += n;
    },
    timeoutMs: options.timeoutS * 1000,
  };
  await waitForQuiet(setup);
  const stopTicker = ticker(`${spec.op} c=${spec.concurrency} gateway r${spec.run}`, spec.size * spec.concurrency, () => moved);
  const start = startMeasure(setup, gateway.child.pid);
  await Promise.all(
    clients.map((ftp, i) => {
      const file = `/${setup.bucket}/${spec.keys[i] ?? ''}`;
      const transfer = spec.op === 'up' ? store(ftp, file, spec.size, transferOptions) : retrieve(ftp, file, spec.size, transferOptions);
      return transfer.catch((error: unknown) => {
        errors.push(error instanceof Error ? error.message : String(error));
      });
    }),
  );
  const wallMs = performance.now() - start.at;
  const result = finish(setup, spec, start, moved, wallMs, errors, true);
  stopTicker();
  await Promise.all(clients.map((ftp) => ftp.quit()));
  if (spec.op === 'up') await checkSizes(setup, spec, result);
  return result;
}

async function directPhase(setup: Setup, spec: PhaseSpec): Promise<PhaseResult> {
  const agent = setup.agent;
  if (!agent) throw new Error('no direct agent');
  let moved = 0;
  await waitForQuiet(setup);
  const stopTicker = ticker(`${spec.op} c=${spec.concurrency} direct r${spec.run}`, spec.size * spec.concurrency, () => moved);
  const start = startMeasure(setup, agent.child.pid);
  const done = await agent.run(
    { op: spec.op, bucket: setup.bucket, keys: spec.keys, size: spec.size, chunk: setup.options.chunk, verify: setup.options.verify },
    (bytes) => {
      moved = bytes;
    },
    setup.options.timeoutS * 1000,
  );
  const result = finish(setup, spec, start, done.bytes, done.wallMs, done.errors, false);
  stopTicker();
  if (spec.op === 'up') await checkSizes(setup, spec, result);
  return result;
}

/** Every uploaded object must exist in the store with the full size. */
async function checkSizes(setup: Setup, spec: PhaseSpec, result: PhaseResult): Promise<void> {
  for (const key of spec.keys) {
    try {
      const head = await setup.admin.send(new HeadObjectCommand({ Bucket: setup.bucket, Key: key }));
      if (head.ContentLength !== spec.size) result.errors.push(`${key}: stored ${head.ContentLength} of ${spec.size} bytes`);
    } catch (error) {
      result.errors.push(`${key}: not stored (${error instanceof Error ? error.name : String(error)})`);
    }
  }
}

async function deletePrefix(setup: Setup, prefix: string): Promise<void> {
  for (let page = 0; page < 10_000; page += 1) {
    const listed = await setup.admin.send(new ListObjectsV2Command({ Bucket: setup.bucket, Prefix: prefix }));
    const objects = (listed.Contents ?? []).map((o) => ({ Key: o.Key ?? '' }));
    if (objects.length === 0) return;
    await setup.admin.send(new DeleteObjectsCommand({ Bucket: setup.bucket, Delete: { Objects: objects, Quiet: true } }));
  }
}

async function removeBucket(setup: Setup): Promise<void> {
  const uploads = await setup.admin.send(new ListMultipartUploadsCommand({ Bucket: setup.bucket }));
  for (const u of uploads.Uploads ?? []) {
    await setup.admin.send(new AbortMultipartUploadCommand({ Bucket: setup.bucket, Key: u.Key, UploadId: u.UploadId }));
  }
  await deletePrefix(setup, '');
  await setup.admin.send(new DeleteBucketCommand({ Bucket: setup.bucket }));
}

/** Runs the phases of one concurrency and run number: uploads in both modes, then downloads. */
async function runRound(setup: Setup, gateway: { child: Child; port: number } | undefined, workers: number, concurrency: number, run: number, total: { up: number; down: number }, warmup: boolean): Promise<PhaseResult[]> {
  const { options } = setup;
  const results: PhaseResult[] = [];
  // Alternate the order between runs so neither side always runs on a warmer (or fuller) system.
  const modes = run % 2 === 1 ? [...options.modes] : [...options.modes].reverse();
  const prefix = `${setup.runId}/w${workers}-c${concurrency}-r${run}${warmup ? '-warmup' : ''}`;
  const phase = (mode: Mode, op: Op, size: number, keys: string[]): Promise<PhaseResult> => {
    const spec: PhaseSpec = { workers, op, mode, concurrency, run, size, keys, warmup };
    if (mode === 'gateway') {
      if (!gateway) throw new Error('no gateway');
      return gatewayPhase(setup, gateway, spec);
    }
    return directPhase(setup, spec);
  };
  const upSize = Math.floor(total.up / concurrency);
  const keysFor = (label: string): string[] => Array.from({ length: concurrency }, (_, i) => `${prefix}-${label}/${i}`);
  let downloadable: string[] | undefined;
  try {
    if (options.ops.includes('up')) {
      for (const mode of modes) {
        const keys = keysFor(mode);
        const result = await phase(mode, 'up', upSize, keys);
        results.push(result);
        if (result.errors.length === 0 && (downloadable === undefined || mode === 'gateway')) downloadable = keys;
      }
    }
    if (options.ops.includes('down')) {
      let downSize: number;
      let keys: string[];
      if (setup.usingSink) {
        downSize = Math.floor(total.down / concurrency);
        keys = Array.from({ length: concurrency }, () => `gen/${downSize}`);
      } else {
        // A real store has only what was uploaded: download this round's uploads (seeded if none).
        downSize = upSize;
        if (!downloadable) {
          downloadable = keysFor('seed');
          const agent = setup.agent ?? (await ensureAgent(setup));
          const seeded = await agent.run({ op: 'up', bucket: setup.bucket, keys: downloadable, size: downSize, chunk: options.chunk, verify: false }, () => undefined, options.timeoutS * 1000);
          if (seeded.errors.length > 0) throw new Error(`seeding downloads failed: ${seeded.errors.join(' | ')}`);
        }
        keys = downloadable;
      }
      for (const mode of modes) results.push(await phase(mode, 'down', downSize, keys));
    }
  } finally {
    if (!setup.usingSink) await deletePrefix(setup, `${prefix}-`);
  }
  return results;
}

let lateAgent: Agent | undefined;
async function ensureAgent(setup: Setup): Promise<Agent> {
  lateAgent ??= await startAgent({
    endpoint: setup.endpoint,
    region: setup.options.region,
    accessKeyId: setup.accessKeyId,
    secretAccessKey: setup.secretAccessKey,
    partSize: setup.options.partSize,
    queueSize: setup.options.queueSize,
  });
  return lateAgent;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage());
    return;
  }
  const options = parseOptions(argv, process.env);
  const runId = `bench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const children: Child[] = [];
  let setup: Setup | undefined;
  let bucketCreated = false;
  const cleanup = async (): Promise<void> => {
    if (setup && bucketCreated && !setup.usingSink) {
      await removeBucket(setup).catch((error: unknown) => log(`cleanup of bucket ${setup?.bucket} failed: ${String(error)}`));
    }
    for (const child of [...children, ...(lateAgent ? [lateAgent.child] : [])].reverse()) await child.stop();
  };
  let interrupted = false;
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('interrupted: cleaning up (Ctrl-C again to quit at once)');
    void cleanup().then(() => process.exit(130));
  });
  try {
    let endpoint = options.endpoint;
    const usingSink = endpoint === undefined;
    const bucket = usingSink ? 'bench' : runId;
    if (endpoint === undefined) {
      const sink = await startSink(bucket);
      children.push(sink.child);
      endpoint = sink.url;
    }
    const admin = new S3Client({
      region: options.region,
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    if (!usingSink) {
      await admin.send(new CreateBucketCommand({ Bucket: bucket }));
      bucketCreated = true;
    }
    let agent: Agent | undefined;
    if (options.modes.includes('direct')) {
      agent = await startAgent({ endpoint, region: options.region, accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey, partSize: options.partSize, queueSize: options.queueSize });
      children.push(agent.child);
    }
    setup = {
      options,
      endpoint,
      usingSink,
      bucket,
      admin,
      storePids: usingSink ? [children[0]?.pid ?? 0] : pidsNamed(['radosgw', 'ceph-osd', 'ceph-mon']),
      agent,
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
      runId,
      pids: () => [...children, ...(lateAgent ? [lateAgent.child] : [])].map((c) => c.pid),
    };
    const results: PhaseResult[] = [];
    const gatewayStartRss = new Map<number, number>();
    for (const workers of options.workers) {
      let gateway: { child: Child; port: number } | undefined;
      if (options.modes.includes('gateway')) {
        const profileDir = options.cpuProf ? path.join(options.cpuProf, `w${workers}`) : undefined;
        if (profileDir) mkdirSync(profileDir, { recursive: true });
        gateway = await startGateway({
          script: options.gateway,
          endpoint,
          region: options.region,
          workers,
          partSize: options.partSize,
          queueSize: options.queueSize,
          pasvPorts: options.pasvPorts,
          extraArgs: options.gatewayArgs,
          nodeArgs: options.gatewayNodeArgs,
          cpuProfDir: profileDir,
        });
        children.push(gateway.child);
        await new Promise((resolve) => setTimeout(resolve, 500));
        const startRss = memory(gateway.child.pid).rss;
        gatewayStartRss.set(workers, startRss);
        log(`gateway pid ${gateway.child.pid} on 127.0.0.1:${gateway.port}, ${workers} worker(s), S3 at ${endpoint}, RSS at start ${(startRss / 1024 ** 2).toFixed(0)} MiB`);
      }
      if (options.warmup > 0) {
        await runRound(setup, gateway, workers, Math.min(4, Math.max(...options.concurrency)), 1, { up: options.warmup, down: options.warmup }, true);
      }
      for (const concurrency of options.concurrency) {
        for (let run = 1; run <= options.runs; run += 1) {
          results.push(...(await runRound(setup, gateway, workers, concurrency, run, { up: options.totalUp, down: options.totalDown }, false)));
        }
      }
      if (gateway) {
        await gateway.child.stop();
        children.splice(children.indexOf(gateway.child), 1);
      }
    }
    if (options.json) writeFileSync(options.json, `${JSON.stringify({ options: { ...options, secretAccessKey: '(not written)' }, gatewayStartRss: Object.fromEntries(gatewayStartRss), results }, null, 2)}\n`);
    const startRss = [...gatewayStartRss.entries()].map(([w, rss]) => `${(rss / 1024 ** 2).toFixed(0)} MiB (w=${w})`).join(', ');
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    process.stdout.write(
      `\n${renderTable(results, {
        title: `${usingSink ? 'bench/s3-sink.ts' : endpoint} · ${os.cpus().length} × ${cpu} · node ${process.version} · runs ${options.runs} (medians) · part ${formatSize(options.partSize)} × queue ${options.queueSize}${startRss ? ` · gateway RSS at start ${startRss}` : ''}`,
      })}\n`,
    );
    const failed = results.filter((r) => r.errors.length > 0).length;
    if (failed > 0) {
      log(`${failed} phase(s) had errors; they are left out of the medians`);
      process.exitCode = 1;
    }
  } finally {
    await cleanup();
  }
}

main().catch((error: unknown) => {
  log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
