// Issue 4 §4 and issue 5 §2-3: connection limits, the idle, accept and stall timeouts, slowloris
// connections, Prometheus metrics and the xferlog, each driven with small flag values so they are
// quick. Outcomes are checked in the store via gw.probe and in what the gateway serves.
import t from 'tap';
import * as net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { backends, type BackendName, type Gateway } from '../helpers/gateway.ts';
import { metricsAddress, metricSum } from '../helpers/metrics.ts';
import { RawFtp } from '../helpers/raw-ftp.ts';
import { eventually, gatewayFor, newBucket, openTransfer, session, writePaced, type Teardown } from '../helpers/ftp-steps.ts';

interface Greeted {
  readonly socket: net.Socket;
  /** The first line the server sent ('' when it closed first). */
  readonly first: Promise<string>;
  /** Everything received, for later lines (e.g. the 421 of the idle timeout). */
  readonly text: () => string;
  readonly closed: Promise<void>;
}

/** A plain TCP control connection from `localAddress` that only reads. */
async function greet(t: Teardown, gw: Gateway, localAddress = '127.0.0.1'): Promise<Greeted> {
  const socket = net.connect({ host: gw.host, port: gw.port, localAddress });
  socket.on('error', () => undefined);
  t.teardown(() => socket.destroy());
  let text = '';
  const first = new Promise<string>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const i = text.indexOf('\r\n');
      if (i >= 0) resolve(text.slice(0, i));
    });
    socket.once('close', () => resolve(''));
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await once(socket, 'connect');
  return { socket, first, text: () => text, closed };
}

/** Connects until greeted with 220 (the server notices a closed connection a moment later). */
async function greetedAgain(t: Teardown, gw: Gateway): Promise<string> {
  let first = '';
  for (let i = 0; i < 30 && !first.startsWith('220 '); i += 1) {
    await sleep(100);
    const c = await greet(t, gw);
    first = await c.first;
    if (!first.startsWith('220 ')) c.socket.destroy();
  }
  return first;
}

/** Resolves true when `promise` settles within `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const result = await Promise.race([promise.then(() => true), late]);
  clearTimeout(timer);
  return result;
}

const local: BackendName = 'local';

t.test('connection limits (local)', async (t) => {
  await t.test('--max-connections 3: the 4th gets 421 at connect, a freed slot is reused', async (t) => {
    const gw = await gatewayFor(t, local, { extraArgs: ['--max-connections', '3'] });
    const open = [await greet(t, gw), await greet(t, gw), await greet(t, gw)];
    for (const c of open) t.match(await c.first, /^220 /, 'within the limit: 220');
    const fourth = await greet(t, gw);
    t.match(await fourth.first, /^421 /, 'the 4th simultaneous connection gets 421');
    t.ok(await within(fourth.closed, 3000), 'and is closed');
    open[0]?.socket.destroy();
    t.match(await greetedAgain(t, gw), /^220 /, 'after one closed, a new connection gets 220');
  });

  await t.test('--max-connections-per-ip 2: a 3rd from 127.0.0.1 gets 421, 127.0.0.2 still gets 220', async (t) => {
    const gw = await gatewayFor(t, local, { extraArgs: ['--max-connections-per-ip', '2'] });
    const a = await greet(t, gw);
    const b = await greet(t, gw);
    t.match(await a.first, /^220 /);
    t.match(await b.first, /^220 /);
    const third = await greet(t, gw);
    t.match(await third.first, /^421 /, 'the 3rd from 127.0.0.1 gets 421');
    const other = await greet(t, gw, '127.0.0.2');
    t.equal(other.socket.localAddress, '127.0.0.2');
    t.match(await other.first, /^220 /, 'another address is not limited by 127.0.0.1');
    a.socket.destroy();
    t.match(await greetedAgain(t, gw), /^220 /, 'after one closed, 127.0.0.1 gets 220 again');
  });
});

t.test('idle timeout (local)', async (t) => {
  const gw = await gatewayFor(t, local, { extraArgs: ['--idle-timeout', '2'] });

  await t.test('an idle logged-in connection gets 421 and is closed after ~2 s', async (t) => {
    const ftp = await session(t, gw);
    const started = Date.now();
    const reply = await ftp.read(6000);
    const waited = Date.now() - started;
    t.equal(reply.code, 421, reply.text);
    t.ok(waited >= 1500 && waited <= 4500, `closed after ${waited} ms`);
    t.ok(await eventually(async () => ftp.closed, 2000), 'the connection is closed');
  });

  await t.test('NOOP every second keeps the connection up for 5 s', async (t) => {
    const ftp = await session(t, gw);
    for (let i = 0; i < 5; i += 1) {
      await sleep(1000);
      t.equal((await ftp.send('NOOP')).code, 200, `NOOP ${i + 1}`);
    }
    t.notOk(ftp.closed, 'still open');
    t.equal((await ftp.send('PWD')).code, 257);
  });

  await t.test('a connection that sends nothing, not even AUTH, is closed', async (t) => {
    const c = await greet(t, gw);
    t.match(await c.first, /^220 /);
    t.ok(await within(c.closed, 4500), 'closed within ~2-4 s');
    t.match(c.text(), /\r\n421 /, 'with a 421 first');
  });
});

for (const backend of backends()) {
  t.test(`an upload longer than the idle timeout is not cut (${backend})`, async (t) => {
    const gw = await gatewayFor(t, backend, { extraArgs: ['--idle-timeout', '2'] });
    const ftp = await session(t, gw);
    const name = await newBucket(t, gw, 'idle');
    const body = randomBytes(300 * 1024 + 5);
    const up = await openTransfer(ftp, `STOR /${name}/slow.bin`);
    t.equal(up.first.code, 150);
    await writePaced(up.data, body, { spreadOverMs: 4000 });
    const final = await ftp.read(10_000);
    t.equal(final.code, 226, `a 4 s upload under --idle-timeout 2: ${final.text}`);
    t.ok((await gw.probe.get(name, 'slow.bin'))?.equals(body), 'the bytes are in the store');
    const started = Date.now();
    t.equal((await ftp.read(6000)).code, 421, 'idle again after the transfer: 421');
    t.ok(Date.now() - started <= 4500, 'in time');
  });
}

t.test('slowloris: 200 silent connections cost little and are closed in time (local)', async (t) => {
  const gw = await gatewayFor(t, local, { extraArgs: ['--idle-timeout', '6', '--metrics', '127.0.0.1:0'] });
  const url = await metricsAddress(gw);
  const rss = async (): Promise<number> => metricSum(await (await fetch(`${url}/metrics`)).text(), 's3ftpd_process_resident_memory_bytes') ?? NaN;
  const rssBefore = await rss();
  const silent: Greeted[] = [];
  // Spread over four source addresses: the per-address limit (64) is not what this test is about.
  for (let i = 0; i < 200; i += 1) silent.push(await greet(t, gw, `127.0.0.${2 + (i % 4)}`));
  const opened = Date.now();
  const greetings = await Promise.all(silent.map((c) => c.first));
  t.equal(greetings.filter((g) => g.startsWith('220 ')).length, 200, 'all 200 were greeted');
  const grown = (await rss()) - rssBefore;
  t.ok(grown < 32 * 1024 * 1024, `they cost ${Math.round(grown / 1024)} KiB of memory in all (under 32 MiB)`);
  const ftp = await session(t, gw);
  const name = await newBucket(t, gw, 'slowloris');
  const body = randomBytes(1024 * 1024);
  const up = await ftp.transfer(`STOR /${name}/ok.bin`, { upload: body });
  t.equal(up.final?.code, 226, 'a normal client still uploads');
  const down = await ftp.transfer(`RETR /${name}/ok.bin`);
  t.ok(down.data.equals(body), 'and downloads');
  t.equal(silent.filter((c) => c.socket.destroyed).length, 0, 'while all 200 silent connections were open');
  const all = await within(Promise.all(silent.map((c) => c.closed)), 6000 + 4000 - (Date.now() - opened));
  t.ok(all, 'every silent connection was closed by the idle timeout');
  t.ok(silent.every((c) => c.text().includes('\r\n421 ')), 'each got 421');
  await ftp.quit();
});

t.test('slowloris: a command trickled a byte at a time is closed by the idle timeout (local)', async (t) => {
  const gw = await gatewayFor(t, local, { extraArgs: ['--idle-timeout', '2'] });
  const c = await greet(t, gw);
  t.match(await c.first, /^220 /);
  const started = Date.now();
  // One byte every 0.5 s never completes a command line: that is not activity.
  const line = 'NOOP NOOP NOOP NOOP';
  for (let i = 0; i < line.length && !c.socket.destroyed; i += 1) {
    c.socket.write(line[i] ?? '');
    if (await within(c.closed, 500)) break;
  }
  const waited = Date.now() - started;
  t.ok(c.socket.destroyed && waited <= 4500, `closed by the idle timeout (${c.socket.destroyed ? `after ${waited} ms` : 'still open'})`);
  t.match(c.text(), /\r\n421 /, 'with a 421');
});

t.test('--accept-timeout 2 (local)', async (t) => {
  const gw = await gatewayFor(t, local, { extraArgs: ['--accept-timeout', '2'] });
  const ftp = await session(t, gw);

  await t.test('EPSV, no data connection for 3 s, then LIST: 425', async (t) => {
    await ftp.epsv();
    await sleep(3000);
    const reply = await ftp.send('LIST /');
    t.equal(reply.code, 425, reply.text);
    t.equal((await ftp.send('NOOP')).code, 200, 'the session goes on');
    t.same(await ftp.list('NLST /'), [], 'and a later listing works');
  });

  await t.test('EPSV then LIST at once without connecting: 425 after ~2 s', async (t) => {
    await ftp.epsv();
    const started = Date.now();
    let reply = await ftp.send('LIST /');
    if (reply.code === 150) reply = await ftp.read(8000);
    const waited = Date.now() - started;
    t.equal(reply.code, 425, reply.text);
    t.ok(waited >= 1000 && waited <= 5000, `after ${waited} ms`);
    t.equal((await ftp.send('NOOP')).code, 200, 'the session goes on');
  });
});

for (const backend of backends()) {
  t.test(`--stall-timeout 2: a stalled upload ends 426 and commits nothing (${backend})`, async (t) => {
    const gw = await gatewayFor(t, backend, { extraArgs: ['--stall-timeout', '2', '--part-size', String(5 * 1024 * 1024)] });
    const ftp = await session(t, gw);
    const name = await newBucket(t, gw, 'stall');
    await gw.probe.put(name, 'stall.bin', 'the old object');
    const up = await openTransfer(ftp, `STOR /${name}/stall.bin`);
    t.equal(up.first.code, 150);
    // More than one part, so S3 has a multipart upload open when the connection stalls.
    await writePaced(up.data, randomBytes(6 * 1024 * 1024), { spreadOverMs: 500, slices: 12, end: false });
    const stalled = Date.now();
    t.ok(await eventually(async () => (await gw.probe.openUploads(name)) > 0, 1500), 'an upload is open in the store when it stalls');
    const final = await ftp.read(10_000);
    const waited = Date.now() - stalled;
    t.equal(final.code, 426, final.text);
    t.ok(waited >= 1500 && waited <= 6000, `426 ${waited} ms after the last byte`);
    t.equal((await gw.probe.get(name, 'stall.bin'))?.toString(), 'the old object', 'the old object is unchanged');
    t.ok(await eventually(async () => (await gw.probe.openUploads(name)) === 0, 5000), 'no multipart upload left');
    t.equal((await ftp.send('NOOP')).code, 200, 'the session goes on');
    up.data.destroy();
  });
}

t.test('--stall-timeout 2: a download the client stops reading ends 426 (local)', async (t) => {
  const gw = await gatewayFor(t, local, { extraArgs: ['--stall-timeout', '2'] });
  const ftp = await session(t, gw);
  const name = await newBucket(t, gw, 'stall-down');
  await gw.probe.put(name, 'big.bin', randomBytes(48 * 1024 * 1024));
  const down = await openTransfer(ftp, `RETR /${name}/big.bin`, { read: false });
  t.equal(down.first.code, 150);
  down.data.pause(); // the client reads nothing: buffers fill and the server can send no more
  const started = Date.now();
  const final = await ftp.read(15_000);
  t.equal(final.code, 426, final.text);
  t.ok(Date.now() - started <= 8000, `within a few seconds (${Date.now() - started} ms)`);
  t.equal((await ftp.send('NOOP')).code, 200, 'the session goes on');
  down.data.destroy();
});

for (const backend of backends()) {
  t.test(`metrics, /healthz and /readyz move with logins and transfers (${backend})`, async (t) => {
    const gw = await gatewayFor(t, backend, { extraArgs: ['--metrics', '127.0.0.1:0'] });
    const url = await metricsAddress(gw);
    t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, 'the metrics address is printed');
    const scrape = async (): Promise<string> => {
      const res = await fetch(`${url}/metrics`);
      if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
      return res.text();
    };
    t.equal((await fetch(`${url}/healthz`)).status, 200, '/healthz 200');
    t.equal((await fetch(`${url}/readyz`)).status, 200, '/readyz 200');
    const before = await scrape();
    const count = (text: string, name: string, labels: Record<string, string> = {}): number => metricSum(text, name, labels) ?? 0;

    const { client: bad } = await RawFtp.connect(gw.host, gw.port);
    await bad.expect('AUTH TLS', 234);
    await bad.upgrade();
    await bad.expect(`USER ${gw.user}`, 331);
    await bad.expect(`PASS wrong-${randomBytes(6).toString('hex')}`, 530);
    bad.destroy();
    const afterFail = await scrape();
    t.equal(count(afterFail, 's3ftpd_logins_total', { result: 'failed' }) - count(before, 's3ftpd_logins_total', { result: 'failed' }), 1, 'failed logins +1');
    t.equal(count(afterFail, 's3ftpd_logins_total', { result: 'ok' }), count(before, 's3ftpd_logins_total', { result: 'ok' }), 'ok logins unchanged');

    const ftp = await session(t, gw);
    const name = await newBucket(t, gw, 'metrics');
    const s3Ops = (text: string): number =>
      count(text, 's3ftpd_s3_request_duration_seconds_count', { operation: 'PutObject' }) +
      count(text, 's3ftpd_s3_request_duration_seconds_count', { operation: 'UploadPart' });
    const ready = await scrape();
    t.equal(count(ready, 's3ftpd_logins_total', { result: 'ok' }) - count(before, 's3ftpd_logins_total', { result: 'ok' }), 1, 'ok logins +1');
    t.equal(count(ready, 's3ftpd_transfers_in_flight'), 0, 'no transfer in flight yet');

    const body = randomBytes(512 * 1024 + 3);
    const up = await openTransfer(ftp, `STOR /${name}/m.bin`);
    t.equal(up.first.code, 150);
    const pacing = writePaced(up.data, body, { spreadOverMs: 2000 });
    await sleep(800);
    const during = await scrape();
    t.equal(metricSum(during, 's3ftpd_transfers_in_flight'), 1, 'one transfer in flight during the upload');
    t.ok(count(during, 's3ftpd_sessions') >= 1, 'sessions >= 1');
    t.equal(metricSum(during, 's3ftpd_passive_ports_in_use'), 1, 'one passive endpoint in use');
    await pacing;
    t.equal((await ftp.read(10_000)).code, 226);
    const after = await scrape();
    t.equal(count(after, 's3ftpd_bytes_total', { direction: 'in' }) - count(ready, 's3ftpd_bytes_total', { direction: 'in' }), body.length, 'bytes in grew by the upload');
    const stores = (text: string): number => count(text, 's3ftpd_transfer_duration_seconds_count', { op: 'store', result: 'ok' });
    t.equal(stores(after) - stores(ready), 1, 'one more store in the duration histogram');
    t.equal(count(after, 's3ftpd_transfers_in_flight'), 0, 'none in flight after');
    for (const family of ['s3ftpd_bans_total', 's3ftpd_s3_request_duration_seconds', 's3ftpd_s3_errors_total', 's3ftpd_passive_ports_in_use', 's3ftpd_worker_pool_utilization']) {
      t.match(after, new RegExp(`^# TYPE ${family} `, 'm'), `${family} is exported`);
    }
    t.match(after, /^s3ftpd_\w*process_resident_memory_bytes \d+/m, 'process metrics are exported');
    if (backend === 's3') {
      let grew = false;
      for (let i = 0; i < 30 && !grew; i += 1) {
        grew = s3Ops(await scrape()) > s3Ops(ready);
        if (!grew) await sleep(100);
      }
      t.ok(grew, 'S3 PutObject/UploadPart latency observed from the worker within ~3 s');
    }
    await ftp.quit();
    const closed = await eventually(async () => count(await scrape(), 's3ftpd_sessions') === 0, 3000);
    t.ok(closed, 's3ftpd_sessions back to 0 after QUIT');
  });
}

t.test('/readyz answers 503 while S3 is unreachable, /healthz 200', async (t) => {
  // Nothing listens on 127.0.0.1:9, so every S3 request is refused at once.
  const gw = await gatewayFor(t, local, { extraArgs: ['--s3-endpoint', 'http://127.0.0.1:9', '--metrics', '127.0.0.1:0'] });
  const url = await metricsAddress(gw);
  t.equal((await fetch(`${url}/healthz`)).status, 200, '/healthz 200: the process is alive');
  t.equal((await fetch(`${url}/readyz`)).status, 503, '/readyz 503: storage unreachable');
});

for (const backend of backends()) {
  t.test(`--xferlog writes one xferlog line per transfer (${backend})`, async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 's3ftpd-xferlog-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'xferlog');
    const gw = await gatewayFor(t, backend, { extraArgs: ['--xferlog', file] });
    const ftp = await session(t, gw);
    const name = await newBucket(t, gw, 'xferlog');
    const body = randomBytes(12_345);
    t.equal((await ftp.transfer(`STOR /${name}/dir/x.bin`, { upload: body })).final?.code, 226);
    t.equal((await ftp.transfer(`RETR /${name}/dir/x.bin`)).final?.code, 226);
    t.same(await ftp.list(`NLST /${name}/dir`), ['x.bin'], 'a listing is not a file transfer');
    let lines: string[] = [];
    await eventually(async () => {
      lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
      return lines.length >= 2;
    }, 3000);
    t.equal(lines.length, 2, 'two lines: the upload and the download');
    const XFER = /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} (\d+) (\S+) (\d+) (\S+) b _ ([io]) r (\S+) ftp 1 (\S+) ([ci])$/;
    const parsed = lines.map((l) => XFER.exec(l));
    t.ok(parsed.every((m) => m !== null), `xferlog format:\n${lines.join('\n')}`);
    t.same(parsed.map((m) => m?.[6]), ['i', 'o'], 'directions i then o');
    for (const m of parsed) {
      t.equal(m?.[3], '127.0.0.1', 'remote host');
      t.equal(Number(m?.[4]), body.length, 'byte count');
      t.equal(m?.[5], `/${name}/dir/x.bin`, 'path');
      t.equal(m?.[7], gw.user, 'user');
      t.equal(m?.[9], 'c', 'complete');
    }
    await ftp.quit();
  });
}
