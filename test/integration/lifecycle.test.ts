// Issue 4 §1, §8 and issue 5 §1: SIGTERM drain, SIGHUP certificate reload, the implicit FTPS
// listener and the --config file. Signals go to the gateway's process (gw.pid) and exit codes come
// from gw.exited.
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { backends, GatewayExitError, startGateway, type Gateway } from '../helpers/gateway.ts';
import { RawFtp } from '../helpers/raw-ftp.ts';
import { eventually, gatewayFor, newBucket, openTransfer, writePaced, type Teardown } from '../helpers/ftp-steps.ts';

const run = promisify(execFile);

/** What a new control connection gets: the greeting, or the connect error code. */
async function tryConnect(host: string, port: number): Promise<string> {
  const socket = net.connect({ host, port });
  try {
    const [chunk] = (await Promise.race([once(socket, 'data'), sleep(5000, [Buffer.from('(no greeting)')], { ref: false })])) as [Buffer];
    return chunk.toString('utf8').trim();
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  } finally {
    socket.destroy();
  }
}

const PART = String(5 * 1024 * 1024);

for (const backend of backends()) {
  t.test(`SIGTERM drain (${backend})`, async (t) => {
    await t.test('the running upload completes, new connections are refused, exit 0', async (t) => {
      const gw = await gatewayFor(t, backend, { extraArgs: ['--part-size', PART] });
      const name = await newBucket(t, gw, 'life');
      const ftp = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
      t.teardown(() => ftp.destroy());
      const body = randomBytes(6 * 1024 * 1024 + 11);
      const up = await openTransfer(ftp, `STOR /${name}/drained.bin`);
      t.equal(up.first.code, 150);
      const pacing = writePaced(up.data, body, { spreadOverMs: 3000, slices: 30 });
      await sleep(800);
      process.kill(gw.pid, 'SIGTERM');
      await sleep(300);
      t.notMatch(await tryConnect(gw.host, gw.port), /^220/, 'a new connection after SIGTERM is refused');
      t.ok(await pacing, 'the upload was not cut');
      const final = await ftp.read(15_000);
      t.equal(final.code, 226, final.text);
      t.ok((await gw.probe.get(name, 'drained.bin'))?.equals(body), 'its bytes are in the store');
      t.equal(await gw.probe.openUploads(name), 0, 'no multipart upload left');
      t.equal(await Promise.race([gw.exited, sleep(10_000, 'still running', { ref: false })]), 0, 'the gateway exits 0');
    });

    await t.test('--drain-timeout 1: a longer upload is aborted and nothing is committed, exit 0', async (t) => {
      const gw = await gatewayFor(t, backend, { extraArgs: ['--part-size', PART, '--drain-timeout', '1'] });
      const name = await newBucket(t, gw, 'life');
      await gw.probe.put(name, 'keep.bin', 'the old object');
      const ftp = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
      t.teardown(() => ftp.destroy());
      const up = await openTransfer(ftp, `STOR /${name}/keep.bin`);
      t.equal(up.first.code, 150);
      // 16 MiB over 5 s: at SIGTERM more than a part (5 MiB) is in, so S3 has a multipart upload open.
      const pacing = writePaced(up.data, randomBytes(16 * 1024 * 1024), { spreadOverMs: 5000, slices: 50 });
      await sleep(1200);
      t.ok(await eventually(async () => (await gw.probe.openUploads(name)) > 0, 1500), 'an upload is open in the store at SIGTERM');
      const signalled = Date.now();
      process.kill(gw.pid, 'SIGTERM');
      const final = await ftp.read(15_000);
      t.ok(final.code === 426 || final.code === 0, `aborted with 426 or a closed connection: ${final.text}`);
      t.ok(Date.now() - signalled < 8000, `within the drain timeout plus the abort (${Date.now() - signalled} ms)`);
      t.notOk(await pacing, 'the data connection was closed before the upload could finish');
      t.equal(await Promise.race([gw.exited, sleep(10_000, 'still running', { ref: false })]), 0, 'the gateway exits 0');
      t.equal((await gw.probe.get(name, 'keep.bin'))?.toString(), 'the old object', 'the old object is unchanged');
      t.equal(await gw.probe.openUploads(name), 0, 'no multipart upload left');
    });
  });
}

/** Upgrades a new control connection and returns the certificate's CN (or fingerprint); rejects after 5 s. */
async function peerCommonName(host: string, port: number, fingerprint = false): Promise<string> {
  const socket = net.connect({ host, port });
  const secure = (async (): Promise<string> => {
    await once(socket, 'connect');
    await once(socket, 'data');
    socket.write('AUTH TLS\r\n');
    await once(socket, 'data');
    const upgraded = tls.connect({ socket, rejectUnauthorized: false });
    await once(upgraded, 'secureConnect');
    const { subject, fingerprint256 } = upgraded.getPeerCertificate();
    return fingerprint ? fingerprint256 : String(subject.CN);
  })();
  try {
    return await Promise.race([secure, sleep(5000, undefined, { ref: false }).then(() => Promise.reject(new Error('no TLS handshake in 5 s')))]);
  } finally {
    socket.destroy();
  }
}

/** Reads CRLF lines from a socket. */
function lines(socket: net.Socket): () => Promise<string> {
  let buffer = '';
  const queue: string[] = [];
  let waiter: ((line: string) => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    for (let i = buffer.indexOf('\r\n'); i >= 0; i = buffer.indexOf('\r\n')) {
      queue.push(buffer.slice(0, i));
      buffer = buffer.slice(i + 2);
    }
    const resolve = waiter;
    if (resolve && queue.length > 0) {
      waiter = undefined;
      resolve(queue.shift() ?? '');
    }
  });
  socket.on('close', () => waiter?.('(closed)'));
  return () => {
    const next = queue.shift();
    if (next !== undefined) return Promise.resolve(next);
    return Promise.race([new Promise<string>((resolve) => (waiter = resolve)), sleep(15_000, '(no reply in 15 s)', { ref: false })]);
  };
}

/** An implicit FTPS connection (TLS from the first byte) and its line reader; rejects when TLS fails. */
async function implicitConnect(t: Teardown, host: string, port: number): Promise<{ socket: tls.TLSSocket; next: () => Promise<string> }> {
  const socket = tls.connect({ host, port, rejectUnauthorized: false });
  t.teardown(() => socket.destroy());
  const next = lines(socket);
  await once(socket, 'secureConnect');
  socket.on('error', () => undefined);
  return { socket, next };
}

const running = (gw: Gateway): Promise<unknown> => Promise.race([gw.exited, sleep(50).then(() => 'running')]);

t.test('SIGHUP reloads the certificate; open sessions keep working (local)', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 's3ftpd-certs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const cn of ['a', 'b']) {
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-days', '1', '-keyout', path.join(dir, `${cn}.key`), '-out', path.join(dir, `${cn}.crt`)]);
  }
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  await copyFile(path.join(dir, 'a.crt'), cert);
  await copyFile(path.join(dir, 'a.key'), key);
  const gw = await gatewayFor(t, 'local', { extraArgs: ['--implicit-tls-listen', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key] });
  const name = await newBucket(t, gw, 'life');
  let implicitPort = 0;
  await eventually(async () => (implicitPort = Number(/implicit FTPS listening on \S+:(\d+)/.exec(gw.logs())?.[1] ?? 0)) > 0, 5000);
  t.equal(await peerCommonName(gw.host, gw.port), 'a', 'certificate A at start');
  const old = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
  t.teardown(() => old.quit());
  await copyFile(path.join(dir, 'b.crt'), cert);
  await copyFile(path.join(dir, 'b.key'), key);
  process.kill(gw.pid, 'SIGHUP');
  let cn = '';
  await eventually(async () => (cn = await peerCommonName(gw.host, gw.port)) === 'b', 5000);
  t.equal(cn, 'b', 'a new connection sees certificate B');
  t.equal((await old.send('NOOP')).code, 200, 'the old connection is still up');
  t.same(await old.list(`NLST /${name}`), [], 'the old connection lists');
  const body = randomBytes(200_000);
  const up = await old.transfer(`STOR /${name}/after-reload.bin`, { upload: body });
  t.equal(up.final?.code, 226, `the old connection stores: ${up.final?.text ?? up.first.text}`);
  t.ok((await gw.probe.get(name, 'after-reload.bin'))?.equals(body), 'its bytes are in the store');
  const fresh = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
  t.teardown(() => fresh.quit());
  t.same(await fresh.list(`NLST /${name}`), ['after-reload.bin'], 'a new session transfers with certificate B');

  // A renewal caught half-way: the next certificate with the current key. The reload must be refused.
  await copyFile(path.join(dir, 'a.crt'), cert);
  process.kill(gw.pid, 'SIGHUP');
  await sleep(1000);
  t.equal(await peerCommonName(gw.host, gw.port).catch((e: Error) => e.message), 'b', 'a mismatched pair is not loaded: B stays');
  const greeting = await implicitConnect(t, gw.host, implicitPort).then(({ next }) => next(), (e: Error) => e.message);
  t.match(greeting, /^220 /, 'an implicit FTPS connection is still served');
  t.equal(await running(gw), 'running', 'the gateway is still running');
  t.equal((await old.send('NOOP')).code, 200, 'the old connection is still up');
});

t.test('SIGHUP without --tls-cert keeps the generated certificate (local)', async (t) => {
  const gw = await gatewayFor(t, 'local');
  const before = await peerCommonName(gw.host, gw.port, true);
  process.kill(gw.pid, 'SIGHUP');
  await sleep(2000);
  t.equal(await peerCommonName(gw.host, gw.port, true), before, 'the same certificate: clients that accepted it once are not warned again');
});

t.test('the generated certificate is kept with the embedded store across restarts; its fingerprint is printed (local)', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 's3ftpd-kept-cert-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const fingerprints: string[] = [];
  for (let start = 0; start < 2; start += 1) {
    const gw = await startGateway('local', { dataDir });
    const seen = await peerCommonName(gw.host, gw.port, true);
    const printed = /TLS certificate SHA-256 fingerprint: (\S+)/.exec(gw.logs())?.[1];
    t.equal(printed, seen, `start ${start + 1}: the printed fingerprint is the one clients see`);
    fingerprints.push(seen);
    await gw.stop();
  }
  t.equal(fingerprints[1], fingerprints[0], 'the same certificate after a restart');
  const key = await stat(path.join(dataDir, '.s3ftpd', 'tls-key.pem'));
  t.equal(key.mode & 0o777, 0o600, 'the key file is readable by its owner only');
});

for (const backend of backends()) {
  t.test(`implicit FTPS listener (${backend})`, async (t) => {
    const gw = await gatewayFor(t, backend, { extraArgs: ['--implicit-tls-listen', '127.0.0.1:0'] });
    let address = '';
    await eventually(async () => (address = /s3ftpd implicit FTPS listening on (\S+:\d+)/.exec(gw.logs())?.[1] ?? '') !== '', 5000);
    t.match(address, /^127\.0\.0\.1:\d+$/, 'the implicit address is printed');
    const name = await newBucket(t, gw, 'implicit');
    const dir = await mkdtemp(path.join(tmpdir(), 's3ftpd-implicit-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const body = randomBytes(100_000);
    await writeFile(path.join(dir, 'up.bin'), body);
    const curl = ['-sS', '-k', '--max-time', '30', '-u', `${gw.user}:${gw.password}`];
    await run('curl', [...curl, '-T', path.join(dir, 'up.bin'), `ftps://${address}/${name}/up.bin`]);
    t.ok((await gw.probe.get(name, 'up.bin'))?.equals(body), 'curl ftps:// uploads');
    const listing = await run('curl', [...curl, '-l', `ftps://${address}/${name}/`]);
    t.same(listing.stdout.split(/\r?\n/).filter((l) => l !== ''), ['up.bin'], 'curl ftps:// lists');

    const [host, port] = address.split(':');
    const { socket, next } = await implicitConnect(t, host ?? '', Number(port));
    t.match(await next(), /^220 /, '220 after the handshake');
    const send = async (line: string): Promise<string> => {
      socket.write(`${line}\r\n`);
      return next();
    };
    t.match(await send(`USER ${gw.user}`), /^331 /);
    t.match(await send(`PASS ${gw.password}`), /^230 /, 'logs in without AUTH');
    t.match(await send('PBSZ 0'), /^200 /);
    t.match(await send('PROT P'), /^200 /);
    const epsv = /\(\|\|\|(\d+)\|\)/.exec(await send('EPSV'));
    const data = tls.connect({ host, port: Number(epsv?.[1]), rejectUnauthorized: false, session: socket.getSession() });
    data.on('error', () => undefined);
    await once(data, 'secureConnect');
    const chunks: Buffer[] = [];
    data.on('data', (chunk: Buffer) => chunks.push(chunk));
    const closed = once(data, 'close');
    t.match(await send(`NLST /${name}`), /^150 /);
    await Promise.race([closed, sleep(15_000, undefined, { ref: false })]);
    t.match(await next(), /^226 /);
    t.equal(Buffer.concat(chunks).toString().trim(), 'up.bin', 'a data transfer over the implicit session');
    t.match(await send('QUIT'), /^221 /);
  });
}

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  return port;
}

async function epsvPort(gw: Gateway): Promise<number> {
  const ftp = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
  const port = await ftp.epsv();
  await ftp.quit();
  return port;
}

async function workerThreads(pid: number, expected: number): Promise<number> {
  let count = 0;
  for (let i = 0; i < 50 && count < expected; i += 1) {
    const tasks = await readdir(`/proc/${pid}/task`);
    const names = await Promise.all(tasks.map((task) => readFile(`/proc/${pid}/task/${task}/comm`, 'utf8').catch(() => '')));
    count = names.filter((n) => n.trim() === 'WorkerThread').length;
    if (count < expected) await sleep(100);
  }
  return count;
}

t.test('--config FILE (local)', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 's3ftpd-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const listenPort = await freePort();
  const pasvLow = 20000 + Math.floor(Math.random() * 20000);
  const file = path.join(dir, 's3ftpd.yaml');
  await writeFile(file, `# test\nlisten: 127.0.0.3:${listenPort}\npasv-ports: ${pasvLow}-${pasvLow + 9}\nworkers: 3\n`);

  await t.test('listen, pasv-ports and workers come from the file', async (t) => {
    const gw = await gatewayFor(t, 'local', { extraArgs: ['--config', file] });
    t.equal(`${gw.host}:${gw.port}`, `127.0.0.3:${listenPort}`, 'listens where the file says');
    const port = await epsvPort(gw);
    t.ok(port >= pasvLow && port <= pasvLow + 9, `passive port ${port} in ${pasvLow}-${pasvLow + 9}`);
    t.equal(await workerThreads(gw.pid, 3), 3, 'three worker threads');
  });

  await t.test('S3FTPD_PASV_PORTS overrides the file', async (t) => {
    const envLow = pasvLow + 100;
    const gw = await gatewayFor(t, 'local', { extraArgs: ['--config', file], env: { S3FTPD_PASV_PORTS: `${envLow}-${envLow + 4}` } });
    const port = await epsvPort(gw);
    t.ok(port >= envLow && port <= envLow + 4, `passive port ${port} in ${envLow}-${envLow + 4}`);
    t.equal(await workerThreads(gw.pid, 3), 3, 'the rest of the file still applies');
  });

  for (const [setting, line] of [
    ['workers', 'workers: lots'],
    ['pasv-ports', 'pasv-ports: 2000-1000'],
    ['idle-timeout', 'idle-timeout: 0'],
  ] as const) {
    await t.test(`a bad ${setting} in the file: exit 2 and a message naming it`, async (t) => {
      const bad = path.join(dir, `bad-${setting}.yaml`);
      await writeFile(bad, `listen: 127.0.0.1:0\n${line}\n`);
      // startGateway resolves once the gateway listens and rejects with GatewayExitError when it exits first.
      const outcome = await startGateway('local', { extraArgs: ['--config', bad] }).then(
        async (gw) => {
          await gw.stop();
          return { code: 'still running', output: gw.logs() };
        },
        (error: unknown) => (error instanceof GatewayExitError ? error : { code: 'did not start', output: String(error) }),
      );
      t.equal(outcome.code, 2, 'exit code 2');
      t.match(outcome.output, new RegExp(`--${setting}\\b.*config file`), `names the setting and the file: ${outcome.output.trim()}`);
      t.notMatch(outcome.output, /listening on/, 'never listened');
    });
  }
});
