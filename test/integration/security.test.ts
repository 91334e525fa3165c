// SPEC §1 and §2: TLS policy before and after AUTH, login failures and the ban, data protection
// levels, session reuse on data connections, data connections from another IP, uploads that break
// without close_notify, and the passive reply. Outcomes are checked in the store via gw.probe.
import t from 'tap';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { duplexOver } from '../../src/tls/eof.ts';
import { once } from 'node:events';
import { constants, randomBytes } from 'node:crypto';
import { backends, type Gateway } from '../helpers/gateway.ts';
import { RawFtp, type FtpReply } from '../helpers/raw-ftp.ts';
import { eventually, gatewayFor, newBucket, session, writeAll, type Teardown } from '../helpers/ftp-steps.ts';

/** A plain control connection that has not sent AUTH yet. */
async function plain(t: Teardown, gw: Gateway): Promise<RawFtp> {
  const { client, greeting } = await RawFtp.connect(gw.host, gw.port);
  if (greeting.code !== 220) throw new Error(`greeting: ${greeting.text}`);
  t.teardown(() => client.destroy());
  return client;
}

/** AUTH TLS, USER, PASS, PBSZ 0 but no PROT: the data protection level is still the default. */
async function loginWithoutProt(t: Teardown, gw: Gateway): Promise<RawFtp> {
  const ftp = await plain(t, gw);
  await ftp.expect('AUTH TLS', 234);
  await ftp.upgrade();
  await ftp.expect(`USER ${gw.user}`, 331);
  await ftp.expect(`PASS ${gw.password}`, 230);
  await ftp.expect('PBSZ 0', 200);
  return ftp;
}

/** Reads one CRLF-terminated line (enough for single-line replies) from a plain socket. */
async function readLine(socket: net.Socket): Promise<string> {
  let text = '';
  for (let i = 0; i < 100 && !text.includes('\r\n'); i += 1) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    text += chunk.toString('utf8');
  }
  return text.trim();
}

/** A control connection upgraded with the caller's TLS options; rejects when the handshake fails. */
async function controlTls(gw: Gateway, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  const socket = net.connect({ host: gw.host, port: gw.port });
  await once(socket, 'connect');
  if (!(await readLine(socket)).startsWith('220 ')) throw new Error('no greeting');
  socket.write('AUTH TLS\r\n');
  if (!(await readLine(socket)).startsWith('234 ')) throw new Error('AUTH TLS refused');
  const secure = tls.connect({ socket, rejectUnauthorized: false, ...options });
  try {
    await once(secure, 'secureConnect');
  } catch (error) {
    socket.destroy();
    throw error;
  }
  return secure;
}

/**
 * EPSV, a data connection that offers `session` for resumption (none: a full handshake), then a
 * STOR of `body` through it; for the tests of which sessions a data connection may resume.
 */
async function storWithSession(
  ftp: RawFtp,
  path: string,
  body: string,
  session: Buffer | undefined,
  tlsOptions: tls.ConnectionOptions = {},
): Promise<{ reused: boolean; protocol: string | null; first: FtpReply; final: FtpReply }> {
  const port = await ftp.epsv();
  const raw = net.connect({ host: ftp.host, port });
  await once(raw, 'connect');
  const data = tls.connect({ ...tlsOptions, socket: raw, rejectUnauthorized: false, session });
  data.on('error', () => undefined);
  await once(data, 'secureConnect');
  const reused = data.isSessionReused();
  const protocol = data.getProtocol();
  const first = await ftp.send(`STOR ${path}`);
  data.end(body);
  const final = first.code === 150 ? await ftp.read() : first;
  return { reused, protocol, first, final };
}

/** The last transfer log line of the gateway for this path, if any. */
function transferLogged(gw: Gateway, path: string): { code: number; bytes: number } | undefined {
  const lines = gw.logs().split('\n').filter((line) => line.includes('"msg":"transfer"') && line.includes(`"path":${JSON.stringify(path)}`));
  const last = lines.at(-1);
  return last === undefined ? undefined : (JSON.parse(last) as { code: number; bytes: number });
}

/**
 * A TLS data connection whose TCP socket stays in our hands: TLS writes through a duplex to it,
 * so `raw.end()` sends a FIN with no close_notify and `raw.resetAndDestroy()` sends a RST.
 */
async function rawTlsData(ftp: RawFtp, port: number, beforeTls?: () => Promise<void>): Promise<{ raw: net.Socket; secure: tls.TLSSocket }> {
  const raw = net.connect({ host: ftp.host, port });
  raw.on('error', () => undefined);
  await once(raw, 'connect');
  // ftplib and lftp send the command and wait for 150 before they start TLS on the data connection.
  await beforeTls?.();
  const between = duplexOver(raw);
  raw.on('end', () => between.push(null));
  raw.on('close', () => between.destroy());
  const secure = tls.connect({ socket: between, rejectUnauthorized: false, session: ftp.tlsSession });
  secure.on('error', () => undefined);
  await once(secure, 'secureConnect');
  return { raw, secure };
}

/** Resolves true when the socket closes within `ms`. */
function closesWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function pasvAddress(reply: FtpReply): { host: string; port: number } | undefined {
  const m = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(reply.text);
  if (!m) return undefined;
  const n = m.slice(1).map(Number);
  return { host: n.slice(0, 4).join('.'), port: (n[4] ?? 0) * 256 + (n[5] ?? 0) };
}

const TLS_REQUIRED = /TLS/i;

for (const backend of backends()) {
  t.test(`security on ${backend}`, async (t) => {
    const gw = await gatewayFor(t, backend);

    await t.test('before AUTH TLS only AUTH, FEAT, SYST, NOOP, HELP, OPTS, QUIT are served', async (t) => {
      const ftp = await plain(t, gw);
      t.equal((await ftp.send('FEAT')).code, 211);
      t.equal((await ftp.send('SYST')).code, 215);
      t.equal((await ftp.send('NOOP')).code, 200);
      t.equal((await ftp.send('HELP')).code, 214);
      t.equal((await ftp.send('OPTS UTF8 ON')).code, 200);
      for (const line of [`USER ${gw.user}`, `PASS ${gw.password}`]) {
        const reply = await ftp.send(line);
        t.ok(reply.code === 530 || reply.code === 534, `${line.split(' ')[0]} before AUTH: ${reply.text}`);
        t.match(reply.text, TLS_REQUIRED, 'the message says TLS is required');
      }
      t.equal((await ftp.send('LIST')).code, 530, 'LIST before AUTH');
      for (const line of ['PBSZ 0', 'PROT P', 'PWD', 'CWD /', 'EPSV', 'PASV', 'STAT', 'RETR x', 'STOR x']) {
        const reply = await ftp.send(line);
        t.ok(reply.code >= 500 && reply.code < 600, `${line} before AUTH is refused: ${reply.text}`);
      }
      t.equal((await ftp.send('QUIT')).code, 221);
      t.ok(await eventually(async () => ftp.closed, 5000), 'QUIT closes the connection');
    });

    await t.test('AUTH SSL and AUTH TLS-C answer 234 and upgrade too', async (t) => {
      for (const mechanism of ['SSL', 'TLS-C', 'tls']) {
        const ftp = await plain(t, gw);
        t.equal((await ftp.send(`AUTH ${mechanism}`)).code, 234, `AUTH ${mechanism}`);
        await ftp.upgrade();
        t.equal((await ftp.send(`USER ${gw.user}`)).code, 331, 'USER is served over TLS');
        t.equal((await ftp.send(`PASS ${gw.password}`)).code, 230);
        t.equal((await ftp.send('AUTH TLS')).code, 503, 'a second AUTH is out of sequence');
        await ftp.quit();
      }
    });

    await t.test('TLS 1.2 is the minimum', async (t) => {
      const modern = await controlTls(gw, {});
      t.equal(modern.getProtocol(), 'TLSv1.3', 'a default client negotiates TLS 1.3');
      modern.destroy();
      const twelve = await controlTls(gw, { maxVersion: 'TLSv1.2' });
      t.equal(twelve.getProtocol(), 'TLSv1.2', 'a TLS 1.2 client is served');
      twelve.destroy();
      // SECLEVEL=0 lets this OpenSSL offer TLS 1.1 at all; the refusal must come from the server.
      const old = controlTls(gw, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
      await t.rejects(old, { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }, 'a TLS 1.1 client gets a protocol_version alert');
    });

    await t.test('login failures answer 530/503 and the session goes on; secrets are never logged', async (t) => {
      const ftp = await plain(t, gw);
      await ftp.expect('AUTH TLS', 234);
      await ftp.upgrade();
      const wrongSecret = `wrong-${randomBytes(12).toString('hex')}`;
      const unknownKey = `UNKNOWN${randomBytes(6).toString('hex').toUpperCase()}`;
      t.equal((await ftp.send(`PASS ${gw.password}`)).code, 503, 'PASS without USER');
      t.equal((await ftp.send(`USER ${gw.user}`)).code, 331);
      t.equal((await ftp.send(`PASS ${wrongSecret}`)).code, 530, 'wrong secret');
      t.equal((await ftp.send('PWD')).code, 530, 'not logged in after a failure');
      t.equal((await ftp.send(`USER ${unknownKey}`)).code, 331);
      t.equal((await ftp.send(`PASS ${gw.password}`)).code, 530, 'unknown access key');
      t.equal((await ftp.send(`PASS ${gw.password}`)).code, 503, 'PASS again without USER');
      t.equal((await ftp.send(`USER ${gw.user}`)).code, 331);
      t.equal((await ftp.send(`PASS ${gw.password}`)).code, 230, 'a later correct login succeeds');
      t.equal((await ftp.send('PWD')).code, 257);
      await ftp.quit();
      const logs = gw.logs();
      t.notOk(logs.includes(wrongSecret), 'the wrong secret is not in the logs');
      t.ok(logs.includes('login failed'), 'failures are logged');
      const logLines = logs.split('\n').filter((line) => line.startsWith('{'));
      t.ok(logLines.length > 0, 'the gateway writes log lines');
      t.notOk(logLines.some((line) => line.includes(gw.password)), 'the real secret is in no log line');
      // The embedded store prints its new secret once in the start banner (SPEC §6); S3 never does.
      if (backend === 's3') t.notOk(logs.includes(gw.password), 'the S3 secret appears nowhere in the output');
    });

    await t.test('PBSZ answers PBSZ=0; PROT C, S, E and unknown levels are refused', async (t) => {
      const ftp = await loginWithoutProt(t, gw);
      t.same((await ftp.send('PBSZ 0')).lines, ['200 PBSZ=0']);
      t.same((await ftp.send('PBSZ 1024')).lines, ['200 PBSZ=0'], 'any size answers PBSZ=0');
      t.equal((await ftp.send('PROT C')).code, 536, 'PROT C without --allow-clear-data');
      t.equal((await ftp.send('PROT S')).code, 536);
      t.equal((await ftp.send('PROT E')).code, 536);
      t.equal((await ftp.send('PROT X')).code, 504);
      t.equal((await ftp.send('PROT P')).code, 200);
      t.equal((await ftp.transfer('LIST /')).final?.code, 226, 'LIST works once PROT P is set');
    });

    await t.test('data commands and PASV/EPSV before PROT P answer 521', async (t) => {
      const b = await newBucket(t, gw, 'prot');
      await gw.probe.put(b, 'f.txt', 'hello');
      const ftp = await loginWithoutProt(t, gw);
      t.equal((await ftp.send('PASV')).code, 521, 'PASV');
      t.equal((await ftp.send('EPSV')).code, 521, 'EPSV');
      for (const line of ['LIST', `NLST /${b}`, `MLSD /${b}`, `RETR /${b}/f.txt`, `STOR /${b}/new.txt`, `APPE /${b}/new.txt`]) {
        t.equal((await ftp.send(line)).code, 521, line);
      }
      t.equal((await ftp.send('PROT C')).code, 536);
      t.equal((await ftp.send('LIST')).code, 521, 'still 521 after a refused PROT C');
      t.same(await gw.probe.keys(b), ['f.txt'], 'nothing was written');
      await ftp.expect('PROT P', 200);
      const down = await ftp.transfer(`RETR /${b}/f.txt`);
      t.equal(down.final?.code, 226, 'RETR after PROT P');
      t.equal(down.data.toString(), 'hello');
    });

    await t.test('a data connection that does not resume the TLS session is refused', async (t) => {
      const b = await newBucket(t, gw, 'reuse');
      const ftp = await session(t, gw);
      const port = await ftp.epsv();
      const data = await ftp.openData(port, { resume: false });
      const up = await ftp.send(`STOR /${b}/fresh.bin`);
      data.end(randomBytes(4096));
      let final = up;
      if (up.code === 150) final = await ftp.read();
      t.ok(final.code === 522 || final.code === 425, `STOR on a fresh TLS session refused: ${up.text} / ${final.text}`);
      // As vsftpd does, 150 may come first (clients such as ftplib start TLS only after it); the
      // refusal is the final reply, and no byte of the upload is taken.
      t.ok(await closesWithin(data, 5000), 'the data connection is closed');
      t.same(await gw.probe.keys(b), [], 'nothing was written to the store');
      t.equal(await gw.probe.openUploads(b), 0);
      const list = await ftp.transfer(`LIST /${b}`, { resume: false });
      const listFinal = list.first.code === 150 ? list.final : list.first;
      t.ok(listFinal?.code === 522 || listFinal?.code === 425, `LIST on a fresh session: ${list.first.text} / ${listFinal?.text}`);
      t.equal(list.data.length, 0, 'no listing bytes were sent');
      const ok = await ftp.transfer(`STOR /${b}/resumed.bin`, { upload: Buffer.from('resumed') });
      t.equal(ok.final?.code, 226, 'the session goes on: a resumed data connection works');
      t.equal((await gw.probe.get(b, 'resumed.bin'))?.toString(), 'resumed');
    });

    await t.test('a data connection resuming another control connection\'s session is refused', async (t) => {
      const b = await newBucket(t, gw, 'othersess');
      const ftp = await session(t, gw);
      const other = await session(t, gw);
      const { reused, first, final } = await storWithSession(ftp, `/${b}/borrowed.bin`, 'borrowed session', other.tlsSession);
      // Each control connection has its own session id context, so the server will not resume a
      // session issued to another control connection: the handshake is a full one.
      t.notOk(reused, "another control connection's session is not resumed");
      t.ok(final.code === 522 || final.code === 425, `refused: ${first.text} / ${final.text}`);
      t.same(await gw.probe.keys(b), [], 'nothing was written to the store');
    });

    await t.test('TLS 1.2 without tickets (resumption by session id): its own session resumes, another connection\'s does not', async (t) => {
      const b = await newBucket(t, gw, 'sessid');
      // What curl does: TLS 1.2 with SSL_OP_NO_TICKET, so the server must keep the session by id.
      const tls12 = { tls: { maxVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_TICKET } } as const;
      const ftp = await RawFtp.login(gw.host, gw.port, gw.user, gw.password, tls12);
      t.teardown(() => ftp.quit());
      const other = await RawFtp.login(gw.host, gw.port, gw.user, gw.password, tls12);
      t.teardown(() => other.quit());
      const cases: Array<[label: string, session: Buffer | undefined, expected: number]> = [
        ['its own control connection\'s session', ftp.tlsSession, 226],
        ['its own session again', ftp.tlsSession, 226],
        ['another control connection\'s session', other.tlsSession, 522],
      ];
      for (const [i, [label, borrowed, expected]] of cases.entries()) {
        const { reused, protocol, first, final } = await storWithSession(ftp, `/${b}/f${i}.bin`, label, borrowed, tls12.tls);
        t.equal(protocol, 'TLSv1.2');
        t.equal(reused, expected === 226, `${label}: ${expected === 226 ? '' : 'not '}resumed`);
        t.equal(final.code, expected, `${label}: STOR answers ${expected} (${first.text} / ${final.text})`);
        t.equal((await gw.probe.get(b, `f${i}.bin`))?.toString(), expected === 226 ? label : undefined, `${label}: ${expected === 226 ? 'stored' : 'nothing stored'}`);
      }
    });

    await t.test('a data connection from another IP is dropped and the transfer goes on', async (t) => {
      const b = await newBucket(t, gw, 'theft');
      const body = randomBytes(256 * 1024 + 3);
      await gw.probe.put(b, 'secret.bin', body);
      const ftp = await session(t, gw);
      for (const op of ['RETR', 'STOR'] as const) {
        const port = await ftp.epsv();
        const thief = net.connect({ host: gw.host, port, localAddress: '127.0.0.2' });
        const stolen: Buffer[] = [];
        thief.on('data', (chunk: Buffer) => stolen.push(chunk));
        thief.on('error', () => undefined);
        await once(thief, 'connect');
        t.equal(thief.localAddress, '127.0.0.2', 'the intruder connects from 127.0.0.2');
        t.ok(await closesWithin(thief, 5000), `${op}: the connection from 127.0.0.2 is dropped`);
        const data = await ftp.openData(port);
        const received: Buffer[] = [];
        data.on('data', (chunk: Buffer) => received.push(chunk));
        const closed = once(data, 'close');
        const first = await ftp.send(op === 'RETR' ? `RETR /${b}/secret.bin` : `STOR /${b}/up.bin`);
        t.equal(first.code, 150, `${op} starts`);
        if (op === 'STOR') data.end(body);
        await closed;
        t.equal((await ftp.read()).code, 226, `${op} completes`);
        if (op === 'RETR') t.ok(Buffer.concat(received).equals(body), 'RETR bytes equal');
        else t.ok((await gw.probe.get(b, 'up.bin'))?.equals(body), 'STOR bytes equal in the store');
        t.equal(Buffer.concat(stolen).length, 0, 'the intruder received nothing');
      }
    });

    await t.test('uploads cut without close_notify or by a reset are not committed', async (t) => {
      const b = await newBucket(t, gw, 'cut');
      const previous = Buffer.from('the previous object');
      const ftp = await session(t, gw);
      const cases = [
        { name: 'FIN without close_notify', size: 1024 * 1024, sent: 512 * 1024, cut: 'fin' },
        { name: 'FIN without close_notify, TLS started after 150', size: 1024 * 1024, sent: 512 * 1024, cut: 'fin', tlsAfter150: true },
        { name: 'TLS socket destroyed', size: 1024 * 1024, sent: 512 * 1024, cut: 'destroy' },
        { name: 'TCP reset', size: 1024 * 1024, sent: 512 * 1024, cut: 'reset' },
        ...(backend === 's3' ? [{ name: 'FIN in a multipart-sized upload', size: 20 * 1024 * 1024, sent: 12 * 1024 * 1024, cut: 'fin' }] : []),
      ];
      for (const c of cases) {
        const key = `cut-${c.cut}-${c.size}.bin`;
        await gw.probe.put(b, key, previous);
        const port = await ftp.epsv();
        const stor = async (): Promise<void> => {
          const first = await ftp.send(`STOR /${b}/${key}`);
          t.equal(first.code, 150, `${c.name}: STOR starts`);
        };
        const tlsAfter150 = 'tlsAfter150' in c && c.tlsAfter150;
        const { raw, secure } =
          c.cut === 'destroy' ? { raw: undefined, secure: (await ftp.openData(port)) as tls.TLSSocket } : await rawTlsData(ftp, port, tlsAfter150 ? stor : undefined);
        if (!tlsAfter150) await stor();
        const body = randomBytes(c.size);
        for (let off = 0; off < c.sent; off += 1024 * 1024) await writeAll(secure, body.subarray(off, Math.min(off + 1024 * 1024, c.sent)));
        if (c.cut === 'fin') raw?.end();
        else if (c.cut === 'reset') raw?.resetAndDestroy();
        else secure.destroy();
        const final = await ftp.read(60_000);
        t.equal(final.code, 426, `${c.name}: 426 (${final.text})`);
        const logged = await eventually(async () => transferLogged(gw, `/${b}/${key}`) !== undefined, 5000);
        const bytes = transferLogged(gw, `/${b}/${key}`)?.bytes ?? -1;
        t.ok(logged && bytes <= c.sent && (c.cut === 'reset' || bytes > 0), `${c.name}: the log shows the ${bytes} bytes received of ${c.sent} sent`);
        t.same(await gw.probe.get(b, key), previous, `${c.name}: the previous object is unchanged`);
        t.ok(await eventually(async () => (await gw.probe.openUploads(b)) === 0, 10_000), `${c.name}: no multipart upload left`);
        raw?.destroy();
        secure.destroy();
      }
      // Control: the same raw path with a clean close_notify commits the upload.
      const port = await ftp.epsv();
      const { secure } = await rawTlsData(ftp, port);
      t.equal((await ftp.send(`STOR /${b}/clean.bin`)).code, 150);
      const body = randomBytes(300 * 1024);
      secure.end(body);
      t.equal((await ftp.read()).code, 226, 'a cleanly closed upload through the same path completes');
      t.ok((await gw.probe.get(b, 'clean.bin'))?.equals(body), 'clean upload bytes equal');
    });

    await t.test('PASV announces 127,0,0,1 and a port in the default passive range', async (t) => {
      const ftp = await session(t, gw);
      const reply = await ftp.send('PASV');
      t.equal(reply.code, 227);
      const addr = pasvAddress(reply);
      t.equal(addr?.host, '127.0.0.1');
      t.ok(addr && addr.port >= 10100 && addr.port <= 12000, `port ${addr?.port} in 10100-12000`);
      const data = await ftp.openData(addr?.port ?? 0);
      const chunks: Buffer[] = [];
      data.on('data', (chunk: Buffer) => chunks.push(chunk));
      const closed = once(data, 'close');
      t.equal((await ftp.send('NLST /')).code, 150, 'the announced port serves the transfer');
      await closed;
      t.equal((await ftp.read()).code, 226);
    });

    await t.test('--allow-clear-data: PROT C answers 200 and a plain data connection lists', async (t) => {
      const lax = await gatewayFor(t, backend, { extraArgs: ['--allow-clear-data'] });
      const b = await newBucket(t, lax, 'clear');
      await lax.probe.put(b, 'visible.txt', 'x');
      const ftp = await loginWithoutProt(t, lax);
      t.equal((await ftp.send('PROT C')).code, 200);
      const port = await ftp.epsv();
      const data = await ftp.openData(port, { tls: false });
      const chunks: Buffer[] = [];
      data.on('data', (chunk: Buffer) => chunks.push(chunk));
      const closed = once(data, 'close');
      t.equal((await ftp.send(`NLST /${b}`)).code, 150);
      await closed;
      t.equal((await ftp.read()).code, 226);
      t.same(Buffer.concat(chunks).toString().split('\r\n').filter(Boolean), ['visible.txt'], 'listing in clear text');
      t.equal((await ftp.send('PROT S')).code, 536, 'other levels stay refused');
    });

    await t.test('--tls-session-reuse address: a session from any control connection of the same address, none from elsewhere', async (t) => {
      const byAddress = await gatewayFor(t, backend, { extraArgs: ['--tls-session-reuse', 'address'] });
      const b = await newBucket(t, byAddress, 'byaddr');
      const ftp = await session(t, byAddress);
      const sibling = await session(t, byAddress);
      const elsewhere = await RawFtp.login(byAddress.host, byAddress.port, byAddress.user, byAddress.password, { localAddress: '127.0.0.2' });
      t.teardown(() => elsewhere.quit());
      const cases: Array<[label: string, borrowed: Buffer | undefined, expected: number]> = [
        ['the session of another control connection from 127.0.0.1', sibling.tlsSession, 226],
        ['the session of a control connection from 127.0.0.2', elsewhere.tlsSession, 522],
        ['no session (a full handshake)', undefined, 522],
      ];
      for (const [i, [label, borrowed, expected]] of cases.entries()) {
        const { reused, first, final } = await storWithSession(ftp, `/${b}/f${i}.bin`, label, borrowed);
        t.equal(reused, expected === 226, `${label}: ${expected === 226 ? '' : 'not '}resumed`);
        t.equal(final.code, expected, `${label}: STOR answers ${expected} (${first.text} / ${final.text})`);
        t.equal((await byAddress.probe.get(b, `f${i}.bin`))?.toString(), expected === 226 ? label : undefined, `${label}: ${expected === 226 ? 'stored' : 'nothing stored'}`);
      }
    });

    await t.test('--tls-session-reuse address, TLS 1.2 without tickets: a sibling\'s session id resumes, one from 127.0.0.2 does not', async (t) => {
      const byAddress = await gatewayFor(t, backend, { extraArgs: ['--tls-session-reuse', 'address'] });
      const b = await newBucket(t, byAddress, 'byaddr12');
      const tls12 = { maxVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_TICKET } as const;
      const login = async (localAddress: string, tlsOptions: tls.ConnectionOptions = tls12): Promise<RawFtp> => {
        const ftp = await RawFtp.login(byAddress.host, byAddress.port, byAddress.user, byAddress.password, { localAddress, tls: tlsOptions });
        t.teardown(() => ftp.quit());
        return ftp;
      };
      const ftp = await login('127.0.0.1');
      const sibling = await login('127.0.0.1');
      const elsewhere = await login('127.0.0.2');
      // TLS 1.3 connections from the same address (2 tickets each) must not crowd the TLS 1.2 sessions out.
      for (let i = 0; i < 20; i += 1) await login('127.0.0.1', {});
      const cases: Array<[label: string, borrowed: Buffer | undefined, expected: number]> = [
        ['its own session', ftp.tlsSession, 226],
        ['a sibling control connection\'s session', sibling.tlsSession, 226],
        ['the session of a control connection from 127.0.0.2', elsewhere.tlsSession, 522],
      ];
      for (const [i, [label, borrowed, expected]] of cases.entries()) {
        const { reused, first, final } = await storWithSession(ftp, `/${b}/g${i}.bin`, label, borrowed, tls12);
        t.equal(reused, expected === 226, `${label}: ${expected === 226 ? '' : 'not '}resumed`);
        t.equal(final.code, expected, `${label}: STOR answers ${expected} (${first.text} / ${final.text})`);
      }
    });

    await t.test('--tls-session-reuse optional: a fresh TLS session on the data connection works', async (t) => {
      const lax = await gatewayFor(t, backend, { extraArgs: ['--tls-session-reuse', 'optional'] });
      const b = await newBucket(t, lax, 'optional');
      const ftp = await session(t, lax);
      const body = randomBytes(64 * 1024);
      const up = await ftp.transfer(`STOR /${b}/fresh.bin`, { upload: body, resume: false });
      t.equal(up.first.code, 150);
      t.equal(up.final?.code, 226);
      t.ok((await lax.probe.get(b, 'fresh.bin'))?.equals(body), 'bytes in the store');
    });

    await t.test('--pasv-ports and --pasv-address shape the passive reply', async (t) => {
      const custom = await gatewayFor(t, backend, { extraArgs: ['--pasv-ports', '15000-15010', '--pasv-address', '127.0.0.5'] });
      const ftp = await session(t, custom);
      for (let i = 0; i < 3; i += 1) {
        const reply = await ftp.send('PASV');
        t.equal(reply.code, 227);
        const addr = pasvAddress(reply);
        t.equal(addr?.host, '127.0.0.5', 'the configured address is announced');
        t.ok(addr && addr.port >= 15000 && addr.port <= 15010, `port ${addr?.port} in 15000-15010`);
      }
      const port = await ftp.epsv();
      t.ok(port >= 15000 && port <= 15010, `EPSV port ${port} in 15000-15010`);
      const data = await ftp.openData(port);
      const closed = once(data, 'close');
      data.resume(); // a client reads the listing; unread data would hold the connection open
      t.equal((await ftp.send('NLST /')).code, 150, 'EPSV in the custom range serves a listing');
      await closed;
      t.equal((await ftp.read()).code, 226);
    });

    await t.test('after 5 failed logins the address is banned: 421 at connect', async (t) => {
      const guarded = await gatewayFor(t, backend);
      const ftp = await plain(t, guarded);
      await ftp.expect('AUTH TLS', 234);
      await ftp.upgrade();
      const secrets = Array.from({ length: 5 }, () => `bad-${randomBytes(10).toString('hex')}`);
      for (const secret of secrets) {
        await ftp.expect(`USER ${guarded.user}`, 331);
        t.equal((await ftp.send(`PASS ${secret}`)).code, 530);
      }
      const { client, greeting } = await RawFtp.connect(guarded.host, guarded.port);
      t.teardown(() => client.destroy());
      t.equal(greeting.code, 421, `banned at connect: ${greeting.text}`);
      t.ok(await eventually(async () => client.closed, 5000), 'the banned connection is closed');
      // The connection that earned the ban must not go on guessing: no login while banned.
      const user = await ftp.send(`USER ${guarded.user}`);
      const pass = user.code === 331 ? await ftp.send(`PASS ${guarded.password}`) : user;
      t.not(pass.code, 230, `no login from a banned address, even with the right secret: ${user.text} / ${pass.text}`);
      const again = await RawFtp.connect(guarded.host, guarded.port);
      t.teardown(() => again.client.destroy());
      t.equal(again.greeting.code, 421, `still banned afterwards: ${again.greeting.text}`);
      const logs = guarded.logs();
      t.notOk(secrets.some((s) => logs.includes(s)), 'no tried secret is in the logs');
    });

    await t.test('--allow-list: an allow-listed address is never banned', async (t) => {
      const trusting = await gatewayFor(t, backend, { extraArgs: ['--max-login-failures', '2', '--allow-list', '127.0.0.9, 127.0.0.1'] });
      const ftp = await plain(t, trusting);
      await ftp.expect('AUTH TLS', 234);
      await ftp.upgrade();
      for (let i = 0; i < 3; i += 1) {
        await ftp.expect(`USER ${trusting.user}`, 331);
        t.equal((await ftp.send(`PASS wrong-${i}`)).code, 530, `failure ${i + 1} answers 530`);
      }
      const { client, greeting } = await RawFtp.connect(trusting.host, trusting.port);
      t.teardown(() => client.destroy());
      t.equal(greeting.code, 220, `3 failures against a limit of 2, and 127.0.0.1 still gets 220: ${greeting.text}`);
      await ftp.expect(`USER ${trusting.user}`, 331);
      t.equal((await ftp.send(`PASS ${trusting.password}`)).code, 230, 'and the right secret logs in');
    });
  });
}
