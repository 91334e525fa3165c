// Several instances behind a load balancer (SPEC §8, issue 13), for real: Debian's HAProxy runs
// deploy/haproxy.cfg itself (its addresses set through HAProxy's environment) on 127.0.0.10 in
// front of two gateways on radosgw (127.0.0.11 and 127.0.0.12, disjoint passive ranges,
// --pasv-address 127.0.0.10, --proxy-protocol-from 127.0.0.10); clients connect from 127.0.0.21,
// 127.0.0.22 and 127.0.0.23. HAProxy is a foreground child of this test, stopped by its PID.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import { once } from 'node:events';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { s3Env, startGateway, uniqueBucket, type Gateway } from '../helpers/gateway.ts';
import { RawFtp } from '../helpers/raw-ftp.ts';
import { eventually, openTransfer, writeAll, writePaced, type Teardown } from '../helpers/ftp-steps.ts';
import { curl, curlCode, describe, ftplib, ftpUrl, lftp } from '../helpers/clients.ts';

const LB = '127.0.0.10';
const CLIENT = '127.0.0.21';
const OTHER = '127.0.0.22';
const THIRD = '127.0.0.23';
type Name = 'a' | 'b';
const ADDRESS: Record<Name, string> = { a: '127.0.0.11', b: '127.0.0.12' };
const PASV: Record<Name, string> = { a: '14000-14049', b: '14050-14099' };
// The balancer and both instances listen on the same port number, each on its own address.
const CONTROL_PORT = 2300 + randomInt(100);
const METRICS_PORT = CONTROL_PORT + 1000;
const IMPLICIT_PORT = CONTROL_PORT + 2000;
const CONFIG = path.resolve(import.meta.dirname, '../../deploy/haproxy.cfg');
const MiB = 1024 * 1024;

function instanceArgs(name: Name): string[] {
  return [
    '--listen', `${ADDRESS[name]}:${CONTROL_PORT}`,
    '--implicit-tls-listen', `${ADDRESS[name]}:${IMPLICIT_PORT}`,
    '--pasv-ports', PASV[name],
    '--pasv-address', LB,
    '--proxy-protocol-from', LB,
    '--metrics', `${ADDRESS[name]}:${METRICS_PORT}`,
    '--max-login-failures', '5',
    '--ban-time', '600',
    '--max-connections-per-ip', '3',
    '--part-size', '5MiB',
    '--drain-timeout', '30',
  ];
}

interface Balancer {
  readonly pid: number;
  readonly output: () => string;
  /** One command on HAProxy's runtime API (the admin socket of deploy/haproxy.cfg). */
  admin(command: string): Promise<string>;
  /** A server's status in `show stat` (UP, DOWN, MAINT, "UP 1/2", ...). */
  status(backend: string, server: Name): Promise<string>;
  stop(): Promise<void>;
}

async function startBalancer(t: Teardown, dir: string): Promise<Balancer> {
  const socketPath = path.join(dir, 'admin.sock');
  const env = {
    ...process.env,
    S3FTPD_LB_ADDRESS: LB,
    S3FTPD_LB_CONTROL_PORT: String(CONTROL_PORT),
    S3FTPD_LB_SOURCE: LB,
    S3FTPD_A_ADDRESS: ADDRESS.a,
    S3FTPD_B_ADDRESS: ADDRESS.b,
    S3FTPD_CONTROL_PORT: String(CONTROL_PORT),
    S3FTPD_METRICS_PORT: String(METRICS_PORT),
    S3FTPD_LB_IMPLICIT_PORT: String(IMPLICIT_PORT),
    S3FTPD_IMPLICIT_PORT: String(IMPLICIT_PORT),
    S3FTPD_A_PASV_PORTS: PASV.a,
    S3FTPD_B_PASV_PORTS: PASV.b,
    S3FTPD_CHECK_INTERVAL: '250ms',
    S3FTPD_ADMIN_SOCKET: socketPath,
    // The production default needs a hard file limit above 40,000, more than a test machine may allow.
    S3FTPD_LB_MAXCONN: '1000',
  };
  const child = spawn('haproxy', ['-db', '-f', CONFIG], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const stop = async (): Promise<void> => {
    if (!running()) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  t.teardown(stop);
  const admin = (command: string): Promise<string> =>
    new Promise((resolve) => {
      const socket = net.connect({ path: socketPath });
      let answer = '';
      const timer = setTimeout(() => socket.destroy(), 5000);
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
      socket.on('error', () => undefined);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(answer);
      });
      socket.end(`${command}\n`);
    });
  const status = async (backend: string, server: Name): Promise<string> => {
    const lines = (await admin('show stat')).split('\n');
    const columns = (lines[0] ?? '').replace(/^# /, '').split(',');
    const row = lines.map((l) => l.split(',')).find((cells) => cells[0] === backend && cells[1] === server);
    return row?.[columns.indexOf('status')] ?? '(none)';
  };
  if (!(await eventually(async () => running() && (await admin('show info')).includes('Name: HAProxy'), 10_000))) {
    await stop();
    throw new Error(`HAProxy did not start:\n${text}`);
  }
  return { pid: child.pid ?? 0, output: () => text, admin, status, stop };
}

interface LogRecord {
  readonly msg?: string;
  readonly remote?: string;
  readonly peer?: string;
  readonly implicitTls?: boolean;
}

function records(gw: Gateway, msg: string): LogRecord[] {
  return gw
    .logs()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogRecord)
    .filter((r) => r.msg === msg);
}

function sessionsFrom(gw: Gateway, remote: string): number {
  return records(gw, 'session opened').filter((r) => r.remote === remote).length;
}

// make test installs HAProxy (scripts/install-test-deps.sh) and runs radosgw: there, a missing one fails.
const cannotRun = !s3Env() ? 'needs radosgw (S3FTPD_TEST_S3_ENDPOINT)' : spawnSync('haproxy', ['-v']).status !== 0 ? 'needs haproxy' : false;
if (cannotRun !== false && process.env.S3FTPD_TEST_REQUIRE_S3 === '1') t.fail(`S3FTPD_TEST_REQUIRE_S3=1 but the multi-instance test ${cannotRun}`);

t.test('two gateways behind HAProxy (deploy/haproxy.cfg, PROXY protocol v2)', { skip: cannotRun }, async (t) => {
  const started = Date.now();
  const dir = await mkdtemp(path.join(tmpdir(), 's3ftpd-haproxy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  const gateways: Record<Name, Gateway> = { a: undefined as unknown as Gateway, b: undefined as unknown as Gateway };
  const startInstance = async (name: Name): Promise<Gateway> => {
    const gw = await startGateway('s3', { extraArgs: instanceArgs(name) });
    t.teardown(() => gw.stop());
    gateways[name] = gw;
    return gw;
  };
  await Promise.all([startInstance('a'), startInstance('b')]);
  const lb = await startBalancer(t, dir);
  const up = (name: Name): Promise<boolean> => eventually(async () => (await lb.status('s3ftpd_control', name)) === 'UP', 10_000);
  t.ok((await up('a')) && (await up('b')), 'HAProxy sees both instances ready (/readyz through its health check)');

  const { user, password } = gateways.a;
  const bucket = uniqueBucket('haproxy');
  await gateways.a.probe.createBucket(bucket);
  t.teardown(() => gateways.a.probe.removeBucket(bucket));
  // What the client programs need of a gateway: the balancer's address and the instances' user.
  const balancer: Gateway = { ...gateways.a, host: LB, port: CONTROL_PORT };
  const login = async (from: string): Promise<RawFtp> => {
    const ftp = await RawFtp.login(LB, CONTROL_PORT, user, password, { localAddress: from });
    t.teardown(() => ftp.quit());
    return ftp;
  };
  const names: Name[] = ['a', 'b'];
  /** Runs `action` and answers the instance on which it opened sessions from `from` (undefined: none or both). */
  const landing = async <T>(from: string, action: () => Promise<T>): Promise<{ on: Name | undefined; result: T }> => {
    const before = names.map((n) => sessionsFrom(gateways[n], from));
    const result = await action();
    await sleep(50);
    const grew = names.filter((n, i) => sessionsFrom(gateways[n], from) > (before[i] ?? 0));
    return { on: grew.length === 1 ? grew[0] : undefined, result };
  };
  const other = (name: Name): Name => (name === 'a' ? 'b' : 'a');

  await t.test('sessions land on both instances; the instances see the clients, not HAProxy', async (t) => {
    const first = await landing(CLIENT, () => login(CLIENT));
    // leastconn: with 127.0.0.21's session still open, the next new client goes to the other instance.
    const second = await landing(OTHER, () => login(OTHER));
    t.ok(first.on, `127.0.0.21 landed on instance ${first.on}`);
    t.ok(second.on && second.on !== first.on, `127.0.0.22 landed on the other instance (${second.on})`);
    for (const name of names) {
      const opened = records(gateways[name], 'session opened');
      t.ok(opened.length > 0, `instance ${name} has sessions`);
      t.ok(opened.every((r) => r.peer === LB && (r.remote === CLIENT || r.remote === OTHER)), `instance ${name}: every session comes from HAProxy (peer ${LB}) for a client address`);
      t.ok(records(gateways[name], 'login').every((r) => r.remote === CLIENT || r.remote === OTHER), `instance ${name}: logins logged with the client's address`);
      t.notOk(gateways[name].logs().includes(`"remote":"${LB}"`), `instance ${name} never logs HAProxy's address as a client`);
    }
    await first.result.quit();
    await second.result.quit();
  });

  await t.test('curl, lftp and ftplib through the balancer, from both client addresses: byte-identical both ways', async (t) => {
    const body = randomBytes(3 * MiB + 12_345);
    const local = path.join(dir, 'upload.bin');
    await writeFile(local, body);
    for (const from of [CLIENT, OTHER]) {
      const tag = from.split('.').pop() ?? '';
      const checks: Array<[string, string, () => Promise<void>]> = [
        ['curl', `curl-${tag}.bin`, async () => {
          const put = await curl(balancer, ['--interface', from, '-T', local, ftpUrl(balancer, `/${bucket}/curl-${tag}.bin`)], { timeoutMs: 30_000 });
          t.equal(curlCode(put), 226, `curl upload from ${from}: ${describe(put)}`);
          const got = path.join(dir, `curl-${tag}.out`);
          const get = await curl(balancer, ['--interface', from, '-o', got, ftpUrl(balancer, `/${bucket}/curl-${tag}.bin`)], { timeoutMs: 30_000 });
          t.equal(curlCode(get), 226, `curl download from ${from}: ${describe(get)}`);
          t.ok((await readFile(got)).equals(body), `curl from ${from}: downloaded bytes identical`);
        }],
        ['lftp', `lftp-${tag}.bin`, async () => {
          const got = path.join(dir, `lftp-${tag}.out`);
          const result = await lftp(balancer, [`put ${local} -o /${bucket}/lftp-${tag}.bin`, `get /${bucket}/lftp-${tag}.bin -o ${got}`], {
            timeoutMs: 40_000,
            extra: [`set net:socket-bind-ipv4 ${from}`],
          });
          t.equal(result.code, 0, `lftp put and get from ${from}: ${describe(result)}`);
          t.ok((await readFile(got).catch(() => Buffer.alloc(0))).equals(body), `lftp from ${from}: downloaded bytes identical`);
        }],
        ['ftplib', `ftplib-${tag}.bin`, async () => {
          const got = path.join(dir, `ftplib-${tag}.out`);
          const { run: result, output } = await ftplib(
            balancer,
            [
              { op: 'stor', path: `/${bucket}/ftplib-${tag}.bin`, file: local },
              { op: 'retr', path: `/${bucket}/ftplib-${tag}.bin`, file: got },
            ],
            { timeoutMs: 40_000, sourceAddress: from },
          );
          t.ok(output?.ok, `ftplib stor and retr from ${from}: ${JSON.stringify(output?.error)} ${describe(result)}`);
          t.ok((await readFile(got).catch(() => Buffer.alloc(0))).equals(body), `ftplib from ${from}: downloaded bytes identical`);
        }],
      ];
      for (const [client, key, check] of checks) {
        const { on } = await landing(from, check);
        t.ok(on, `${client} from ${from}: its sessions were on instance ${on}`);
        t.ok((await gateways.a.probe.get(bucket, key))?.equals(body), `${client} from ${from}: object in S3 byte-identical`);
      }
    }
    const perInstance = names.map((n) => `${n}: ${records(gateways[n], 'session opened').length}`).join(', ');
    t.comment(`sessions so far per instance: ${perInstance}`);
  });

  await t.test('implicit FTPS through the balancer (curl ftps://), and PROXY v1 and a missing header straight to an instance', async (t) => {
    const body = randomBytes(MiB + 3);
    const local = path.join(dir, 'implicit.bin');
    await writeFile(local, body);
    const url = `ftps://${LB}:${IMPLICIT_PORT}/${bucket}/implicit.bin`;
    const { on } = await landing(THIRD, async () => {
      const put = await curl(balancer, ['--interface', THIRD, '-T', local, url], { timeoutMs: 30_000 });
      t.equal(curlCode(put), 226, `curl implicit FTPS upload: ${describe(put)}`);
      const got = path.join(dir, 'implicit.out');
      const get = await curl(balancer, ['--interface', THIRD, '-o', got, url], { timeoutMs: 30_000 });
      t.equal(curlCode(get), 226, `curl implicit FTPS download: ${describe(get)}`);
      t.ok((await readFile(got)).equals(body), 'downloaded bytes identical');
    });
    t.ok(on, `implicit FTPS sessions of 127.0.0.23 on instance ${on}`);
    const implicit = names.flatMap((n) => records(gateways[n], 'session opened')).filter((r) => r.implicitTls === true);
    t.ok(implicit.length >= 2 && implicit.every((r) => r.remote === THIRD && r.peer === LB), 'logged as implicit TLS sessions of 127.0.0.23 through HAProxy');
    t.ok((await gateways.a.probe.get(bucket, 'implicit.bin'))?.equals(body), 'object byte-identical');
    // HAProxy speaks v2; a v1 header (send-proxy) from the trusted address works the same.
    const v1 = net.connect({ host: ADDRESS.a, port: CONTROL_PORT, localAddress: LB });
    v1.on('error', () => undefined);
    await once(v1, 'connect');
    const v1Before = sessionsFrom(gateways.a, '192.0.2.7');
    v1.write(`PROXY TCP4 192.0.2.7 ${ADDRESS.a} 40000 ${CONTROL_PORT}\r\n`);
    const [greeting] = (await once(v1, 'data')) as [Buffer];
    t.match(greeting.toString(), /^220 /, 'a PROXY v1 header from the balancer\'s address: greeting');
    v1.destroy();
    // The greeting may overtake the log line on its way through the gateway's stderr pipe.
    t.ok(await eventually(async () => sessionsFrom(gateways.a, '192.0.2.7') === v1Before + 1, 3000), 'session logged as the address the v1 header carries');
    const bare = net.connect({ host: ADDRESS.a, port: CONTROL_PORT, localAddress: LB });
    bare.on('error', () => undefined);
    let said = '';
    bare.on('data', (chunk: Buffer) => (said += chunk.toString()));
    const bareClosed = new Promise<boolean>((resolve) => bare.once('close', () => resolve(true)));
    await once(bare, 'connect');
    bare.write('USER anonymous\r\n');
    t.ok(await Promise.race([bareClosed, sleep(8000).then(() => false)]), 'no header from the balancer\'s address: closed');
    t.equal(said, '', 'without a word');
  });

  await t.test('port theft through the balancer: 127.0.0.22 on 127.0.0.21\'s passive port is dropped, the owner\'s transfer works', async (t) => {
    const { result: ftp, on } = await landing(CLIENT, () => login(CLIENT));
    const port = await ftp.epsv();
    t.ok(on, `127.0.0.21 is on instance ${on}, passive port ${port}`);
    const thief = net.connect({ host: LB, port, localAddress: OTHER });
    thief.on('error', () => undefined);
    let stolen = 0;
    thief.on('data', (chunk: Buffer) => (stolen += chunk.length));
    const thiefClosed = new Promise<boolean>((resolve) => thief.once('close', () => resolve(true)));
    await once(thief, 'connect');
    t.equal(thief.localAddress, OTHER, 'the intruder connects from 127.0.0.22');
    // It sends nothing: an accepted data connection would wait for its TLS handshake, not close.
    t.ok(await Promise.race([thiefClosed, sleep(5000).then(() => false)]), 'the intruder\'s connection is closed');
    t.equal(stolen, 0, 'the intruder received nothing');
    const body = randomBytes(MiB);
    const data = await ftp.openData(port);
    const closed = new Promise<void>((resolve) => data.once('close', () => resolve()));
    const first = await ftp.send(`STOR /${bucket}/owned.bin`);
    t.equal(first.code, 150, `the owner's STOR starts: ${first.text}`);
    data.end(body);
    await closed;
    t.equal((await ftp.read()).code, 226, 'the owner\'s transfer completes on the same port');
    t.ok((await gateways.a.probe.get(bucket, 'owned.bin'))?.equals(body), 'bytes identical');
    await ftp.quit();
  });

  await t.test('SIGTERM: /readyz 503, HAProxy takes the instance out, its running upload completes, new sessions go to the other', async (t) => {
    const { result: ftp, on } = await landing(OTHER, () => login(OTHER));
    const victim = on ?? 'a';
    const survivor = other(victim);
    const gw = gateways[victim];
    const readyz = `http://${ADDRESS[victim]}:${METRICS_PORT}/readyz`;
    t.equal((await fetch(readyz)).status, 200, `instance ${victim} ready before`);
    const body = randomBytes(6 * MiB + 777);
    const upload = await openTransfer(ftp, `STOR /${bucket}/drained.bin`);
    t.equal(upload.first.code, 150, 'upload started');
    const paced = writePaced(upload.data, body, { spreadOverMs: 6000, slices: 30 });
    await sleep(1000);
    const signalled = Date.now();
    process.kill(gw.pid, 'SIGTERM');
    t.ok(await eventually(async () => (await fetch(readyz).catch(() => undefined))?.status === 503, 3000), '/readyz answers 503 once the drain started');
    const readyzMs = Date.now() - signalled;
    t.ok(await eventually(async () => (await lb.status('s3ftpd_control', victim)).startsWith('DOWN'), 5000), `HAProxy marks instance ${victim} DOWN`);
    const downMs = Date.now() - signalled;
    for (const from of [CLIENT, OTHER, THIRD]) {
      const next = await landing(from, () => login(from));
      t.equal(next.on, survivor, `a new session from ${from} lands on instance ${survivor}`);
      await next.result.quit();
    }
    t.notOk(gw.hasExited(), 'the draining instance still runs while its upload does');
    t.ok(await paced, 'every byte sent');
    await upload.received;
    const final = await ftp.read(20_000);
    t.equal(final.code, 226, `the upload running at SIGTERM completes: ${final.text}`);
    t.ok((await gw.probe.get(bucket, 'drained.bin'))?.equals(body), 'and is byte-identical in S3');
    const code = await Promise.race([gw.exited, sleep(10_000).then(() => 'still running')]);
    t.equal(code, 0, 'the instance exits 0 once drained');
    t.comment(`SIGTERM → /readyz 503 in ${readyzMs} ms, HAProxy DOWN in ${downMs} ms, upload done and exit in ${Date.now() - signalled} ms`);
    await startInstance(victim);
    t.ok(await up(victim), `instance ${victim} restarted and back in rotation`);
  });

  await t.test('SIGKILL mid-upload: the old object survives, the retry and a cut upload\'s continuation succeed on the other instance', async (t) => {
    const { result: ftp, on } = await landing(OTHER, () => login(OTHER));
    const victim = on ?? 'a';
    const survivor = other(victim);
    const gw = gateways[victim];
    // A cut upload of a new key: its parts stay in S3 as a resumable upload.
    const fresh = randomBytes(12 * MiB + 4321);
    const cut = await openTransfer(ftp, `STOR /${bucket}/resumed.bin`);
    t.equal(cut.first.code, 150, 'upload of a new key started');
    await writeAll(cut.data, fresh);
    await sleep(1500);
    cut.data.destroy();
    t.equal((await ftp.read(20_000)).code, 426, 'cut: 426');
    const size = await ftp.send(`SIZE /${bucket}/resumed.bin`);
    const offset = Number(size.text.slice(4));
    t.ok(size.code === 213 && offset > 0 && offset % (5 * MiB) === 0, `SIZE gives the offset of whole parts: ${size.text}`);
    // An upload over an existing object, running when the instance is killed.
    const old = randomBytes(MiB + 1);
    await gw.probe.put(bucket, 'existing.bin', old);
    const replacement = randomBytes(4 * MiB + 99);
    const over = await openTransfer(ftp, `STOR /${bucket}/existing.bin`);
    t.equal(over.first.code, 150, 'upload over an existing object started');
    const paced = writePaced(over.data, replacement, { spreadOverMs: 8000, slices: 40 });
    // And an upload of a new key running when the instance dies (stick on src: same instance).
    const crashing = await landing(OTHER, () => login(OTHER));
    t.equal(crashing.on, victim, `the second session is on instance ${victim} too`);
    const crashBody = randomBytes(14 * MiB + 777);
    const crash = await openTransfer(crashing.result, `STOR /${bucket}/crashed.bin`);
    t.equal(crash.first.code, 150, 'upload of a new key started');
    await writeAll(crash.data, crashBody.subarray(0, 12 * MiB));
    await sleep(1500);
    process.kill(gw.pid, 'SIGKILL');
    const killed = Date.now();
    t.equal(await Promise.race([gw.exited, sleep(5000).then(() => 'running')]), null, 'the instance is gone (signal)');
    t.notOk(await paced, 'the client sees its upload cut');
    t.ok((await gw.probe.get(bucket, 'existing.bin'))?.equals(old), 'the previous object at that key is intact');
    // The client retries through the balancer: the dead instance refuses, HAProxy redispatches.
    const retry = await landing(OTHER, () => login(OTHER));
    t.equal(retry.on, survivor, `the retry's session is on instance ${survivor}`);
    const again = await retry.result.transfer(`STOR /${bucket}/existing.bin`, { upload: replacement });
    t.equal(again.final?.code, 226, 'the retried upload completes');
    t.ok((await gw.probe.get(bucket, 'existing.bin'))?.equals(replacement), 'and is byte-identical');
    const there = await retry.result.send(`SIZE /${bucket}/resumed.bin`);
    t.equal(there.text, size.text, `the other instance sees the cut upload's offset: ${there.text}`);
    t.equal((await retry.result.send(`REST ${offset}`)).code, 350, 'REST at the offset');
    const rest = await retry.result.transfer(`STOR /${bucket}/resumed.bin`, { upload: fresh.subarray(offset) });
    t.equal(rest.final?.code, 226, `the continuation completes on instance ${survivor}: ${rest.final?.text ?? rest.first.text}`);
    t.ok((await gw.probe.get(bucket, 'resumed.bin'))?.equals(fresh), 'the resumed object is byte-identical');
    // The upload the kill cut: recorded when it began, so the survivor finds and continues it.
    const crashSize = await retry.result.send(`SIZE /${bucket}/crashed.bin`);
    const crashOffset = Number(crashSize.text.slice(4));
    t.ok(crashSize.code === 213 && crashOffset > 0 && crashOffset % (5 * MiB) === 0, `the killed upload is resumable there: ${crashSize.text}`);
    t.equal((await retry.result.send(`REST ${crashOffset}`)).code, 350);
    const finished = await retry.result.transfer(`STOR /${bucket}/crashed.bin`, { upload: crashBody.subarray(crashOffset) });
    t.equal(finished.final?.code, 226, `the killed upload completes on instance ${survivor}`);
    t.ok((await gw.probe.get(bucket, 'crashed.bin'))?.equals(crashBody), 'byte-identical');
    crashing.result.destroy();
    t.comment(`SIGKILL → retry and continuation done on instance ${survivor} in ${Date.now() - killed} ms`);
    await retry.result.quit();
    await startInstance(victim);
    t.ok(await up(victim), `instance ${victim} restarted and back in rotation`);
  });

  await t.test('limits and bans count the client address, per instance', async (t) => {
    t.match(await lb.admin('set server s3ftpd_control/b state maint'), /^\s*$/, 'instance b in maintenance: every new session goes to a');
    t.ok(await eventually(async () => (await lb.status('s3ftpd_control', 'b')).startsWith('MAINT'), 3000), 'HAProxy shows b in MAINT');
    // --max-connections-per-ip 3, counted per client: HAProxy's own address would have hit it.
    const held = [];
    for (let i = 0; i < 3; i += 1) held.push(await login(CLIENT));
    const fourth = await RawFtp.connect(LB, CONTROL_PORT, { localAddress: CLIENT });
    t.equal(fourth.greeting.code, 421, `a fourth connection from 127.0.0.21 is refused: ${fourth.greeting.text}`);
    fourth.client.destroy();
    const neighbour = await landing(OTHER, () => login(OTHER));
    t.equal(neighbour.on, 'a', '127.0.0.22 still gets in, on the same instance');
    await neighbour.result.quit();
    for (const ftp of held) await ftp.quit();
    // Five failed logins from 127.0.0.21, all on instance a.
    await sleep(500); // the instance releases the closed sessions' count
    const fail = async (): Promise<number> => {
      const { client } = await RawFtp.connect(LB, CONTROL_PORT, { localAddress: CLIENT });
      await client.expect('AUTH TLS', 234);
      await client.upgrade();
      await client.expect(`USER ${user}`, 331);
      const reply = await client.send('PASS wrong-password');
      client.destroy();
      return reply.code;
    };
    const failures: number[] = [];
    for (let i = 0; i < 5; i += 1) failures.push(await fail());
    t.same(failures, [530, 530, 530, 530, 530], 'five failed logins from 127.0.0.21');
    t.same(records(gateways.a, 'address banned after failed logins').map((r) => r.remote), [CLIENT], 'instance a bans 127.0.0.21 (not HAProxy\'s address)');
    const banned = await RawFtp.connect(LB, CONTROL_PORT, { localAddress: CLIENT });
    t.equal(banned.greeting.code, 421, `127.0.0.21 is refused at connect: ${banned.greeting.text}`);
    banned.client.destroy();
    const bystander = await landing(OTHER, () => login(OTHER));
    t.equal(bystander.on, 'a', '127.0.0.22 through the same balancer still logs in on instance a');
    await bystander.result.quit();
    // Bans are per instance: with a out and b back, 127.0.0.21 logs in on b.
    await lb.admin('set server s3ftpd_control/a state maint');
    await lb.admin('set server s3ftpd_control/b state ready');
    t.ok(await up('b'), 'b back in rotation');
    t.equal(records(gateways.b, 'address banned after failed logins').length, 0, 'instance b banned nobody');
    const elsewhere = await landing(CLIENT, () => login(CLIENT));
    t.equal(elsewhere.on, 'b', '127.0.0.21 logs in on instance b: the ban is instance a\'s');
    await elsewhere.result.quit();
    await lb.admin('set server s3ftpd_control/a state ready');
  });

  t.comment(`whole run: ${Date.now() - started} ms`);
});
