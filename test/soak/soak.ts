// A bounded soak (issue 4, promise 9): many logged-in control sessions sitting idle (NOOP now and
// then) while a fixed number of transfer sessions cycle STOR / RETR / compare / DELE against the
// gateway, on the embedded store (or S3 with --s3). The gateway's RSS is sampled every few seconds.
// Exits non-zero on any unexplained error (every error is unexplained: nothing is injected here),
// on any byte mismatch, or when memory is not flat: the first third of the run is warm-up (V8 heaps
// and malloc arenas grow to their working size), and RSS may grow at most 5% from the middle to
// the last third.
//
//   node test/soak/soak.ts [--duration 300] [--sessions 1000] [--transfers 100] [--max-bytes N] [--s3]
//                          [--sample-every 5] [--gateway-node-options '--max-old-space-size=128']
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { RawFtp } from '../helpers/raw-ftp.ts';
import { s3Env, startGateway, type Gateway } from '../helpers/gateway.ts';

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '300' },
    sessions: { type: 'string', default: '1000' },
    transfers: { type: 'string', default: '100' },
    'max-bytes': { type: 'string' },
    'sample-every': { type: 'string', default: '5' },
    s3: { type: 'boolean', default: false },
    // e.g. --max-old-space-size=128, to tell lazy garbage collection from a leak.
    'gateway-node-options': { type: 'string' },
  },
});
const durationMs = Number(flags.duration) * 1000;
const idleCount = Number(flags.sessions);
const transferCount = Number(flags.transfers);
const useS3 = flags.s3;
// The radosgw memstore is small: keep objects small on S3.
const maxBytes = Number(flags['max-bytes'] ?? (useS3 ? 16 * 1024 : 256 * 1024));
const sampleMs = Number(flags['sample-every']) * 1000;
const LOGIN_CONCURRENCY = 20;
const NOOP_EVERY_MS = 20_000;

const errors = new Map<string, number>();
const counts = { transfersOk: 0, bytesVerified: 0, noops: 0, mismatches: 0 };
const rss: Array<{ s: number; kb: number; heapMb: number }> = [];

function fail(what: string): void {
  errors.set(what, (errors.get(what) ?? 0) + 1);
}

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

/** The main thread's V8 heap in use (MiB), from the gateway's own /metrics; workers are not included. */
async function mainHeapMb(metricsUrl: string | undefined): Promise<number> {
  if (!metricsUrl) return 0;
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(2000) })).text().catch(() => '');
  return Number(/^s3ftpd_\w*nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? 0) / 1024 / 1024;
}

async function loginAll(gw: Gateway, user: string, password: string, n: number): Promise<RawFtp[]> {
  const sessions: RawFtp[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      next += 1;
      try {
        sessions.push(await RawFtp.login(gw.host, gw.port, user, password));
      } catch (error) {
        fail(`login: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(LOGIN_CONCURRENCY, n) }, lane));
  return sessions;
}

/** One transfer lane: STOR random bytes, RETR and compare, DELE; until the deadline. */
async function transferLane(ftp: RawFtp, bucket: string, lane: number, deadline: number): Promise<void> {
  for (let round = 0; Date.now() < deadline && !ftp.closed; round += 1) {
    const file = `/${bucket}/soak/${lane}/${round}.bin`;
    const body = randomBytes(1 + Math.floor(Math.random() * maxBytes));
    try {
      const up = await ftp.transfer(`STOR ${file}`, { upload: body });
      if (up.final?.code !== 226) {
        fail(`STOR ${up.final?.code ?? up.first.code}`);
        continue;
      }
      const down = await ftp.transfer(`RETR ${file}`);
      if (down.final?.code !== 226) {
        fail(`RETR ${down.final?.code ?? down.first.code}`);
        continue;
      }
      if (!down.data.equals(body)) {
        counts.mismatches += 1;
        fail('RETR bytes differ');
        continue;
      }
      counts.bytesVerified += body.length;
      const dele = await ftp.send(`DELE ${file}`);
      if (dele.code !== 250) fail(`DELE ${dele.code}`);
      counts.transfersOk += 1;
    } catch (error) {
      fail(`exception: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (ftp.closed) fail('transfer session closed');
}

/** Idle sessions: each sends NOOP about every NOOP_EVERY_MS, spread out; any closed session is an error. */
async function idleLoop(sessions: RawFtp[], deadline: number): Promise<void> {
  const due = sessions.map(() => Date.now() + Math.random() * NOOP_EVERY_MS);
  while (Date.now() < deadline) {
    const now = Date.now();
    await Promise.all(
      sessions.map(async (s, i) => {
        if ((due[i] ?? 0) > now || s.closed) return;
        due[i] = now + NOOP_EVERY_MS;
        const reply = await s.send('NOOP').catch(() => ({ code: -1 }));
        if (reply.code === 200) counts.noops += 1;
        else fail(`NOOP ${reply.code}`);
      }),
    );
    await sleep(500);
  }
  const closed = sessions.filter((s) => s.closed).length;
  for (let i = 0; i < closed; i += 1) fail('idle session closed');
}

async function main(): Promise<void> {
  const s3 = useS3 ? s3Env() : undefined;
  if (useS3 && !s3) throw new Error('--s3 needs the S3FTPD_TEST_* environment (. /tmp/s3ftpd-rgw/env)');
  const extraArgs = ['--workers', '2', '--max-connections-per-ip', '2000', '--log-level', 'warn', '--metrics', '127.0.0.1:0'];
  const nodeOptions = flags['gateway-node-options'];
  // On the embedded store, startGateway makes a temporary data directory and stop() removes it.
  const gw = await startGateway(s3 ? 's3' : 'local', { extraArgs, env: nodeOptions ? { NODE_OPTIONS: nodeOptions } : {} });
  const { user, password } = gw;
  const bucket = `soak-${randomBytes(4).toString('hex')}`;
  const started = Date.now();
  const baseline = await rssKb(gw.pid);
  const metricsUrl = /s3ftpd metrics on (\S+)/.exec(gw.logs())?.[1];
  try {
    const admin = await RawFtp.login(gw.host, gw.port, user, password);
    if ((await admin.send(`MKD /${bucket}`)).code !== 257) throw new Error('MKD of the soak bucket failed');
    const movers = await loginAll(gw, user, password, transferCount);
    const idle = await loginAll(gw, user, password, idleCount);
    const rampS = (Date.now() - started) / 1000;
    process.stdout.write(`logged in ${idle.length} idle + ${movers.length} transfer sessions in ${rampS.toFixed(1)} s\n`);
    const steadyStart = Date.now();
    const deadline = steadyStart + durationMs;
    const sampler = (async (): Promise<void> => {
      for (let at = steadyStart; at <= deadline; at += sampleMs) {
        await sleep(Math.max(0, at - Date.now()));
        rss.push({ s: Math.round((Date.now() - steadyStart) / 1000), kb: await rssKb(gw.pid), heapMb: await mainHeapMb(metricsUrl) });
      }
    })();
    await Promise.all([idleLoop(idle, deadline), sampler, ...movers.map((m, i) => transferLane(m, bucket, i, deadline))]);
    if (gw.hasExited()) fail('gateway exited');
    for (let i = 0; i < idle.length + movers.length; i += 100) {
      await Promise.all([...idle, ...movers].slice(i, i + 100).map((s) => s.quit()));
    }
    // Every object was deleted after its check: on S3 the bucket is empty now.
    const rmd = await admin.send(`RMD /${bucket}`).catch(() => ({ code: -1 }));
    if (s3 && rmd.code !== 250) fail(`RMD of the emptied bucket ${rmd.code}`);
    await admin.quit();
  } finally {
    await gw.stop();
  }
  report(baseline, (Date.now() - started) / 1000);
}

function report(baselineKb: number, totalS: number): void {
  const kb = rss.map((r) => r.kb);
  const third = Math.max(1, Math.floor(kb.length / 3));
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const firstThird = mean(kb.slice(0, third));
  const middleThird = mean(kb.slice(third, kb.length - third));
  const lastThird = mean(kb.slice(-third));
  const warmUpGrowth = firstThird > 0 ? middleThird / firstThird - 1 : 0;
  const growth = middleThird > 0 ? lastThird / middleThird - 1 : 0;
  const mib = (k: number): string => `${(k / 1024).toFixed(1)} MiB`;
  const errorTotal = [...errors.values()].reduce((a, b) => a + b, 0);
  const lines = [
    `soak on ${useS3 ? 's3' : 'the embedded store'}: ${idleCount} idle sessions, ${transferCount} transfer lanes, ${flags.duration} s steady (total ${totalS.toFixed(1)} s), objects up to ${maxBytes} bytes`,
    `transfers ok (STOR+RETR+compare+DELE): ${counts.transfersOk}, bytes verified: ${counts.bytesVerified}, NOOPs ok: ${counts.noops}`,
    `errors: ${errorTotal}${errorTotal > 0 ? ` ${JSON.stringify(Object.fromEntries(errors))}` : ''}`,
    `RSS: before logins ${mib(baselineKb)}, first ${mib(kb[0] ?? 0)}, last ${mib(kb.at(-1) ?? 0)}, max ${mib(Math.max(0, ...kb))}; ` +
      `mean first third ${mib(firstThird)} (warm-up), middle ${mib(middleThird)} (${(warmUpGrowth * 100).toFixed(1)}%), ` +
      `last ${mib(lastThird)} (${(growth * 100).toFixed(1)}% after warm-up; flat means at most 5%)`,
    `RSS samples (s:MiB, main-thread heap MiB): ${rss.map((r) => `${r.s}:${(r.kb / 1024).toFixed(0)}/${r.heapMb.toFixed(0)}`).join(' ')}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const ok = errorTotal === 0 && counts.mismatches === 0 && growth <= 0.05 && kb.length >= 6 && counts.transfersOk > 0;
  process.stdout.write(ok ? 'soak passed\n' : 'soak FAILED\n');
  process.exitCode = ok ? 0 : 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`soak: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exitCode = 1;
});
