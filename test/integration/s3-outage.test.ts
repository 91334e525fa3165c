// Issue 4 §6 with a real outage: this file starts its own single-node Ceph cluster and kills only
// its radosgw (mon and osd keep running, so buckets, objects and open multipart uploads survive)
// in the middle of a STOR and of a RETR, then restarts it. A failed upload must end in 451/426 and
// leave the old object alone; the multipart upload it opened must be aborted once S3 is back (by
// the S3 driver's background abort retry, since the abort fails while radosgw is down); logins and
// listings while S3 is down must answer at once; every session must go on.
//
// Runs whenever the radosgw binaries are installed (and must run under S3FTPD_TEST_REQUIRE_S3=1).
// Its cluster listens on S3FTPD_TEST_OUTAGE_RGW_PORT / S3FTPD_TEST_OUTAGE_MON_PORT (default 7680
// and 6989), never on the suite's main radosgw.
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { accessSync, constants, existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as net from 'node:net';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { s3ClientFor, uniqueBucket, type Gateway } from '../helpers/gateway.ts';
import { RawFtp, type FtpReply } from '../helpers/raw-ftp.ts';
import { eventually, gatewayFor, loginWhileStorageDown, openTransfer, writeAll, type Teardown } from '../helpers/ftp-steps.ts';

const run = promisify(execFile);
const SCRIPTS = path.resolve(import.meta.dirname, '../../scripts');
const MiB = 1024 * 1024;
const RGW_PORT = process.env.S3FTPD_TEST_OUTAGE_RGW_PORT ?? '7680';
const MON_PORT = process.env.S3FTPD_TEST_OUTAGE_MON_PORT ?? '6989';
const RGW_BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool'];

function onPath(binary: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir, binary), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** A cluster of our own; only its radosgw is stopped and restarted. */
interface OwnRadosgw {
  readonly endpoint: string;
  /** SIGKILL to radosgw (a crash); resolves once its port refuses connections. */
  kill(): Promise<void>;
  /** radosgw-start.sh --restart-rgw: the same command and port; resolves once it answers S3. */
  restart(): Promise<void>;
}

/** The pid in STATE_DIR/rgw.pid, if that process is still the radosgw of this cluster. */
async function rgwPid(stateDir: string): Promise<number | undefined> {
  const pid = Number((await readFile(path.join(stateDir, 'rgw.pid'), 'utf8')).trim());
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.split('\0').includes(path.join(stateDir, 'ceph.conf')) ? pid : undefined;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function startOwnRadosgw(t: Teardown): Promise<OwnRadosgw> {
  const stateDir = await mkdtemp(path.join(tmpdir(), 's3ftpd-outage-'));
  const stop = path.join(SCRIPTS, 'radosgw-stop.sh');
  // radosgw-stop.sh stops the daemons and removes the directory, but only once radosgw-start.sh
  // has marked it as its own; a start that failed before that leaves our empty directory.
  const made = (): boolean => existsSync(path.join(stateDir, '.s3ftpd-rgw-state'));
  let stopped = false;
  const stopSync = (): void => {
    if (!stopped && made()) spawnSync('bash', [stop, stateDir], { stdio: 'ignore', timeout: 60_000 });
    rmSync(stateDir, { recursive: true, force: true });
    stopped = true;
  };
  // Teardown is the normal way out; 'exit' covers a test process that ends without it.
  process.once('exit', stopSync);
  t.teardown(async () => {
    if (!stopped && made()) await run('bash', [stop, stateDir], { timeout: 60_000 });
    await rm(stateDir, { recursive: true, force: true });
    stopped = true;
  });
  await run('bash', [path.join(SCRIPTS, 'radosgw-start.sh'), stateDir], {
    timeout: 150_000,
    // 1 GiB of memstore is plenty for a few 64 MiB objects.
    env: { ...process.env, RGW_PORT, RGW_MON_PORT: MON_PORT, RGW_OBJECTSTORE: 'memstore', RGW_MEMSTORE_BYTES: String(1024 * MiB) },
  });
  // startGateway and s3ClientFor read the S3FTPD_TEST_* variables; in this test file's process
  // they now name our own cluster (tap runs each test file in a process of its own).
  for (const line of readFileSync(path.join(stateDir, 'env'), 'utf8').split('\n')) {
    const match = /^export (S3FTPD_TEST_\w+)=(\S+)$/.exec(line);
    if (match?.[1] && match[2]) process.env[match[1]] = match[2];
  }
  return {
    endpoint: `http://127.0.0.1:${RGW_PORT}`,
    async kill() {
      const pid = await rgwPid(stateDir);
      if (pid === undefined) throw new Error('radosgw is not running');
      process.kill(pid, 'SIGKILL');
      if (!(await eventually(async () => !(await accepts(Number(RGW_PORT))), 5000))) throw new Error('radosgw still accepts after SIGKILL');
    },
    async restart() {
      await run('bash', [path.join(SCRIPTS, 'radosgw-start.sh'), '--restart-rgw', stateDir], { timeout: 60_000 });
    },
  };
}

/** Multipart uploads S3 still holds open for exactly this key. */
async function openUploadsFor(s3: S3Client, bucket: string, key: string): Promise<number> {
  const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  return (res.Uploads ?? []).filter((u) => u.Key === key).length;
}

/** A reply within `ms`, or code -1 saying none came. */
function replyWithin(ftp: RawFtp, ms: number): Promise<FtpReply> {
  return ftp.read(ms).catch(() => ({ code: -1, lines: [], text: `no reply within ${ms} ms` }));
}

/** Writes `total` bytes in 1 MiB slices, `pauseMs` apart, until done or the gateway closes the connection. */
async function trickle(data: net.Socket, total: number, pauseMs: number, sent: { bytes: number }): Promise<void> {
  const slice = randomBytes(MiB);
  for (let offset = 0; offset < total && !data.destroyed; offset += MiB) {
    await writeAll(data, slice);
    sent.bytes += MiB;
    await sleep(pauseMs);
  }
  if (!data.destroyed) data.end();
}

/** The final code of a transfer command: the first reply unless it was 150. */
async function transferCode(ftp: RawFtp, command: string, ms: number): Promise<{ code: number; text: string; ms: number }> {
  const started = Date.now();
  const attempt = ftp.transfer(command).then((r) => r.final ?? r.first);
  const reply = await Promise.race([attempt, sleep(ms, { code: -1, lines: [], text: `no reply within ${ms} ms` }, { ref: false })]);
  return { code: reply.code, text: reply.text, ms: Date.now() - started };
}

const haveRadosgw = RGW_BINARIES.every(onPath);
if (!haveRadosgw && process.env.S3FTPD_TEST_REQUIRE_S3 !== '1') {
  t.plan(0, `radosgw binaries not installed (${RGW_BINARIES.join(', ')}); run scripts/install-test-deps.sh`);
} else {
  t.test('radosgw stopped mid-transfer and restarted', async (t) => {
    const rgw = await startOwnRadosgw(t);
    const gw: Gateway = await gatewayFor(t, 's3', {
      s3Endpoint: rgw.endpoint,
      // Part size at the minimum so a multipart upload is open early; timeouts well inside the test's.
      extraArgs: ['--part-size', String(5 * MiB), '--s3-timeout', '10', '--stall-timeout', '30'],
    });
    const s3 = s3ClientFor(gw.user, gw.password);
    t.teardown(() => s3.destroy());
    // No bucket clean-up: the whole cluster goes at teardown.
    const bucket = uniqueBucket('outage');
    await gw.probe.createBucket(bucket);
    const login = async (): Promise<RawFtp> => {
      const ftp = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
      t.teardown(() => ftp.destroy());
      return ftp;
    };
    const ftp = await login();
    const old = randomBytes(MiB + 7);
    await gw.probe.put(bucket, 'big.bin', old);
    const fresh = randomBytes(64 * MiB + 3);

    await t.test('(a) STOR of 64 MiB when radosgw dies: 451, the session goes on', async (t) => {
      const up = await openTransfer(ftp, `STOR /${bucket}/big.bin`);
      t.equal(up.first.code, 150, up.first.text);
      const sent = { bytes: 0 };
      // ~10 MiB/s: the whole body would take over 6 s, the kill comes at ~16 MiB.
      const writing = trickle(up.data, 64 * MiB, 100, sent);
      const partsUnderWay = await eventually(async () => sent.bytes >= 16 * MiB && (await openUploadsFor(s3, bucket, 'big.bin')) === 1, 15_000);
      t.ok(partsUnderWay, `a multipart upload is open for the key after ${sent.bytes / MiB} MiB sent`);
      await rgw.kill();
      const killedAt = Date.now();
      const final = await replyWithin(ftp, 30_000);
      // 451, not 426: the storage failed, not the client's data connection.
      t.equal(final.code, 451, `STOR answers 451: ${final.text}`);
      t.ok(sent.bytes < 64 * MiB, `the kill landed mid-transfer (${sent.bytes / MiB} of 64 MiB sent)`);
      t.comment(`STOR answered ${Date.now() - killedAt} ms after the kill`);
      up.data.destroy();
      await writing;
      t.equal((await ftp.send('NOOP')).code, 200, 'NOOP after the failed STOR');
      const status = await ftp.send('STAT');
      t.equal(status.code, 211, 'STAT after the failed STOR');
      t.match(status.text, /Transfer in progress: no/, 'no transfer left running');
    });

    await t.test('while radosgw is down: login and LIST answer at once with an error', async (t) => {
      await loginWhileStorageDown(t, gw, gw.user, gw.password, 'radosgw down');
      const listed = await transferCode(ftp, `LIST /${bucket}`, 10_000);
      t.equal(listed.code, 451, `LIST answers 451: ${listed.text}`);
      t.match(listed.text, /temporarily unavailable/, 'and says the storage is unavailable');
      t.ok(listed.ms < 5000, `LIST answered in ${listed.ms} ms`);
      t.equal((await ftp.send('NOOP')).code, 200, 'the session goes on');
      // The abort the gateway sends when the upload fails cannot reach S3 either; it is retried
      // with backoff. radosgw stays down until a retry has failed too.
      const failedAborts = (): number => gw.logs().match(/abort of a failed multipart upload failed; retrying/g)?.length ?? 0;
      t.ok(await eventually(async () => failedAborts() >= 2, 10_000), `the abort failed and was retried (${failedAborts()} failed attempts)`);
    });

    await t.test('(b) radosgw back: the upload is aborted in the background, the old object kept', async (t) => {
      await rgw.restart();
      const back = Date.now();
      t.ok((await gw.probe.get(bucket, 'big.bin'))?.equals(old), 'the old object is byte-equal');
      // Retries come 1, 2, 4, 8, 16 s apart, so one lands within ~16 s of the restart.
      const aborted = await eventually(async () => (await openUploadsFor(s3, bucket, 'big.bin')) === 0, 40_000);
      t.ok(aborted, 'no multipart upload left for the key');
      t.comment(`multipart upload gone ${Date.now() - back} ms after the restart`);
      t.equal((await ftp.send('NOOP')).code, 200, 'the session goes on');
      const again = await login();
      t.same(await again.list(`NLST /${bucket}`), ['big.bin'], 'login and LIST work again');
      const up = await ftp.transfer(`STOR /${bucket}/big.bin`, { upload: fresh });
      t.equal(up.final?.code, 226, `a fresh STOR succeeds: ${up.final?.text ?? up.first.text}`);
      t.ok((await gw.probe.get(bucket, 'big.bin'))?.equals(fresh), 'and is stored whole');
    });

    await t.test('(c) RETR of 64 MiB when radosgw dies: 451, the session goes on', async (t) => {
      const down = await openTransfer(ftp, `RETR /${bucket}/big.bin`);
      t.equal(down.first.code, 150, down.first.text);
      // Held: the gateway is mid-way through the GetObject body when radosgw dies.
      down.data.pause();
      await sleep(500);
      await rgw.kill();
      down.data.resume();
      const final = await replyWithin(ftp, 30_000);
      const received = await Promise.race([down.received, sleep(10_000, undefined, { ref: false })]);
      t.equal(final.code, 451, `RETR answers 451: ${final.text}`);
      t.ok(received !== undefined && received.length < 64 * MiB, `the data connection ended short (${received?.length ?? 'still open'} bytes)`);
      t.equal((await ftp.send('NOOP')).code, 200, 'NOOP after the failed RETR');
      await rgw.restart();
      const whole = await ftp.transfer(`RETR /${bucket}/big.bin`);
      t.equal(whole.final?.code, 226, `RETR after the restart: ${whole.final?.text ?? whole.first.text}`);
      t.ok(whole.data.equals(fresh), `all bytes arrive (${whole.data.length} of ${fresh.length})`);
    });
  });
}
