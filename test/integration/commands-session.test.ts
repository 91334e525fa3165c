// SPEC §4, session rows: FEAT, SYST, NOOP, HELP, OPTS, STAT, PASV/EPSV, PORT/EPRT, ABOR, QUIT, the
// catch-all row (502/501/530/500) and the line rules (case-insensitive verbs, bare LF).
import t from 'tap';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { backends } from '../helpers/gateway.ts';
import { RawFtp } from '../helpers/raw-ftp.ts';
import { eventually, gatewayFor, newBucket, openTransfer, session, stor, writeAll, type Teardown } from '../helpers/ftp-steps.ts';

const REQUIRED_FEATURES = ['AUTH TLS', 'PBSZ', 'PROT', 'UTF8', 'EPSV', 'SIZE', 'MDTM', 'REST STREAM', 'MLST type*;size*;modify*;perm*;'];

/** Connected and upgraded to TLS, not logged in. */
async function tlsOnly(t: Teardown, host: string, port: number): Promise<RawFtp> {
  const { client } = await RawFtp.connect(host, port);
  t.teardown(() => client.destroy());
  await client.expect('AUTH TLS', 234);
  await client.upgrade();
  return client;
}

for (const backend of backends()) {
  t.test(`session commands on ${backend}`, async (t) => {
    const gw = await gatewayFor(t, backend);

    await t.test('FEAT 211 multi-line with the required features, before and after login', async (t) => {
      const { client: plain } = await RawFtp.connect(gw.host, gw.port);
      t.teardown(() => plain.destroy());
      const ftp = await session(t, gw);
      for (const [when, client] of [['before AUTH', plain], ['logged in', ftp]] as const) {
        const feat = await client.send('FEAT');
        t.equal(feat.code, 211, when);
        t.match(feat.lines[0], /^211-/, `${when}: multi-line`);
        t.match(feat.lines.at(-1), /^211 /, `${when}: ends with "211 "`);
        const middle = feat.lines.slice(1, -1);
        t.ok(middle.every((l) => l.startsWith(' ')), `${when}: each feature line starts with a space`);
        const features = middle.map((l) => l.trim());
        for (const f of REQUIRED_FEATURES) t.ok(features.includes(f), `${when}: ${f}`);
      }
    });

    await t.test('SYST 215, NOOP 200, HELP 214', async (t) => {
      const ftp = await session(t, gw);
      t.same((await ftp.send('SYST')).lines, ['215 UNIX Type: L8']);
      t.equal((await ftp.send('NOOP')).code, 200);
      const help = await ftp.send('HELP');
      t.equal(help.code, 214);
      t.match(help.text, /RETR/, 'HELP lists the commands');
      t.equal((await ftp.send('HELP RETR')).code, 214);
    });

    await t.test('OPTS UTF8 ON 200, OPTS MLST 200, unknown option 501', async (t) => {
      const ftp = await session(t, gw);
      t.equal((await ftp.send('OPTS UTF8 ON')).code, 200);
      t.equal((await ftp.send('OPTS utf8 on')).code, 200);
      t.equal((await ftp.send('OPTS MLST type;size;modify;perm;')).code, 200);
      t.equal((await ftp.send('OPTS MLST type;')).code, 200);
      t.equal((await ftp.send('OPTS BOGUS 1')).code, 501);
      t.equal((await ftp.send('OPTS')).code, 501, 'no option at all');
    });

    await t.test('STAT: 211 connection status without an argument, 213 listing with a path', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'stat');
      const body = randomBytes(12_345);
      t.equal(await stor(ftp, `/${b}/s t.bin`, body), 226);
      const status = await ftp.send('STAT');
      t.equal(status.code, 211);
      t.ok(status.lines.length > 2 && status.lines[0]?.startsWith('211-') && status.lines.at(-1)?.startsWith('211 '), 'multi-line');
      t.ok(gw.user !== '' && status.text.includes(gw.user), 'names the user');
      t.match(status.text, /TLSv1\.[23]/, 'names the TLS version');
      t.match(status.text, /transfers?\D{0,20}1\b/i, 'counts the transfer');
      t.match(status.text, /12345/, 'counts the bytes');
      const listing = await ftp.send(`STAT /${b}`);
      t.equal(listing.code, 213);
      t.ok(listing.lines.length >= 3, `213 multi-line: ${listing.text}`);
      t.ok(listing.lines.some((l) => /^ ?-rw-r--r-- .* 12345 .* s t\.bin$/.test(l)), 'the file in ls -l form');
      const one = await ftp.send(`STAT /${b}/s t.bin`);
      t.equal(one.code, 213);
      t.ok(one.lines.some((l) => / s t\.bin$/.test(l)), 'STAT of a file');
    });

    await t.test('PASV 227 (h1,h2,h3,h4,p1,p2) usable; EPSV 229 (|||port|); EPSV 2 522', async (t) => {
      const ftp = await session(t, gw);
      const pasv = await ftp.send('PASV');
      t.equal(pasv.code, 227);
      const m = /^227 Entering Passive Mode \((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(pasv.lines[0] ?? '');
      t.ok(m, pasv.text);
      t.equal(m?.slice(1, 5).join('.'), '127.0.0.1', 'the control connection address');
      const port = Number(m?.[5]) * 256 + Number(m?.[6]);
      t.ok(port >= 10100 && port <= 12000, `port ${port} in the default range`);
      const data = await ftp.openData(port);
      const chunks: Buffer[] = [];
      data.on('data', (c: Buffer) => chunks.push(c));
      const closed = once(data, 'close');
      t.equal((await ftp.send('NLST /')).code, 150, 'a transfer over the PASV port');
      await closed;
      t.equal((await ftp.read()).code, 226);
      const epsv = await ftp.send('EPSV');
      t.match(epsv.lines[0], /^229 Entering Extended Passive Mode \(\|\|\|\d+\|\)/);
      t.equal((await ftp.send('EPSV 1')).code, 229);
      t.equal((await ftp.send('EPSV 2')).code, 522, 'IPv6 on an IPv4 connection');
      t.equal((await ftp.send('EPSV 7')).code, 522);
      t.equal((await ftp.send('ABOR')).code, 226);
    });

    await t.test('EPSV ALL 200, then PASV 503 and EPSV still 229', async (t) => {
      const ftp = await session(t, gw);
      t.equal((await ftp.send('EPSV ALL')).code, 200);
      t.equal((await ftp.send('PASV')).code, 503);
      t.equal((await ftp.send('EPSV')).code, 229);
      t.equal((await ftp.send('ABOR')).code, 226);
    });

    await t.test('PORT/EPRT 502 (active mode is not supported); unknown 502; missing argument 501', async (t) => {
      const ftp = await session(t, gw);
      for (const line of ['PORT 127,0,0,1,39,16', 'EPRT |1|127.0.0.1|10000|']) {
        const reply = await ftp.send(line);
        t.equal(reply.code, 502, line);
        t.match(reply.text, /active mode is not supported/i);
      }
      for (const line of ['XYZZY', 'SITE CHMOD 644 x', 'LPSV', 'X'.repeat(40)]) t.equal((await ftp.send(line)).code, 502, line.slice(0, 20));
      for (const verb of ['RETR', 'STOR', 'SIZE', 'MDTM', 'DELE', 'RNFR', 'RNTO', 'CWD', 'MKD', 'RMD', 'REST', 'USER', 'TYPE', 'MODE', 'STRU']) {
        t.equal((await ftp.send(verb)).code, 501, `${verb} without an argument`);
      }
    });

    await t.test('every line is answered: a verb after a leading space is not dropped', async (t) => {
      const ftp = await session(t, gw);
      ftp.writeRaw(' SYST\r\nNOOP\r\n');
      const odd = await ftp.read();
      t.ok([215, 500, 502].includes(odd.code), `" SYST" gets its own reply (215, 500 or 502), got: ${odd.text}`);
      if (odd.code !== 200) t.equal((await ftp.read()).code, 200, 'then the NOOP');
    });

    await t.test('commands before login answer 530', async (t) => {
      const { client: plain } = await RawFtp.connect(gw.host, gw.port);
      t.teardown(() => plain.destroy());
      t.equal((await plain.send('PWD')).code, 530, 'before AUTH');
      const user = await plain.send(`USER ${gw.user || 'someone'}`);
      t.ok(user.code === 530 || user.code === 534, `USER before AUTH: ${user.text}`);
      t.match(user.text, /TLS/);
      const ftp = await tlsOnly(t, gw.host, gw.port);
      for (const line of ['PWD', 'CWD /', 'LIST', 'NLST', 'MLSD', 'RETR /x/y', 'STOR /x/y', 'SIZE /x/y', 'MKD /x', 'DELE /x/y', 'EPSV', 'PASV', 'STAT /', 'REST 0', 'ABOR']) {
        t.equal((await ftp.send(line)).code, 530, line);
      }
      t.equal((await ftp.send('USER x')).code, 331);
      t.equal((await ftp.send('PWD')).code, 530, 'after USER, before PASS');
      t.equal((await ftp.send('NOOP')).code, 200, 'NOOP is served before login');
    });

    await t.test('a line over 4096 bytes answers 500 and the session goes on', async (t) => {
      const ftp = await session(t, gw);
      ftp.writeRaw(`NOOP ${'a'.repeat(5000)}\r\n`);
      t.equal((await ftp.read()).code, 500, 'the long line in one piece');
      t.equal((await ftp.send('NOOP')).code, 200);
      for (const piece of [`CWD /${'b'.repeat(3000)}`, 'c'.repeat(3000), `${'d'.repeat(3000)}\r\n`]) {
        ftp.writeRaw(piece);
        await sleep(100);
      }
      t.equal((await ftp.read()).code, 500, 'the long line in pieces');
      t.same((await ftp.send('SYST')).lines, ['215 UNIX Type: L8'], 'the rest of the long line is not a command');
      t.equal((await ftp.send(`NOOP ${'e'.repeat(4000)}`)).code, 200, 'a line under the limit is served');
    });

    await t.test('commands are case-insensitive; bare LF line endings are tolerated', async (t) => {
      const ftp = await session(t, gw);
      t.equal((await ftp.send('noop')).code, 200);
      t.same((await ftp.send('SyST')).lines, ['215 UNIX Type: L8']);
      t.equal((await ftp.send('feat')).code, 211);
      t.equal((await ftp.send('cwd /')).code, 250);
      t.match((await ftp.send('pwd')).lines[0], /^257 "\/"/);
      t.equal((await ftp.send('opts utf8 on')).code, 200);
      t.match((await ftp.send('epsv')).lines[0], /^229 /);
      t.equal((await ftp.send('abor')).code, 226);
      ftp.writeRaw('NOOP\n');
      t.equal((await ftp.read()).code, 200, 'bare LF');
      ftp.writeRaw('PWD\nSYST\r\nNOOP\n');
      t.equal((await ftp.read()).code, 257, 'pipelined, mixed endings');
      t.equal((await ftp.read()).code, 215);
      t.equal((await ftp.read()).code, 200);
    });

    await t.test('ABOR with no transfer 226; during a large RETR 426 then 226', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'aborretr');
      t.equal((await ftp.send('ABOR')).code, 226, 'nothing running');
      await gw.probe.put(b, 'big.bin', randomBytes(48 * 1024 * 1024));
      const running = await openTransfer(ftp, `RETR /${b}/big.bin`, { read: false });
      t.equal(running.first.code, 150);
      await sleep(300);
      t.equal((await ftp.send('ABOR')).code, 426, 'the transfer is aborted');
      t.equal((await ftp.read()).code, 226, 'then ABOR succeeds');
      let got = 0;
      running.data.on('data', (c: Buffer) => {
        got += c.length;
      });
      await running.received;
      t.ok(got < 48 * 1024 * 1024, `the data connection closed early (${got} bytes)`);
      t.equal((await ftp.send('NOOP')).code, 200);
      t.ok((await ftp.list(`NLST /${b}`)).includes('big.bin'), 'the next transfer works');
    });

    await t.test('ABOR during a STOR: 426 then 226, no object or multipart upload left, an old object unchanged', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'aborstor');
      const old = randomBytes(1000);
      await gw.probe.put(b, 'old.bin', old);
      for (const key of ['new.bin', 'old.bin']) {
        const running = await openTransfer(ftp, `STOR /${b}/${key}`);
        t.equal(running.first.code, 150, key);
        // More than one 5 MiB part, so S3 has a multipart upload open when ABOR comes.
        await writeAll(running.data, randomBytes(12 * 1024 * 1024));
        t.ok(await eventually(async () => (await gw.probe.openUploads(b)) > 0), `${key}: an upload is open in the store`);
        t.equal((await ftp.send('ABOR')).code, 426, `${key}: the upload is aborted`);
        t.equal((await ftp.read()).code, 226, `${key}: then ABOR succeeds`);
        await running.received;
      }
      t.equal(await gw.probe.get(b, 'new.bin'), undefined, 'no object left');
      t.ok((await gw.probe.get(b, 'old.bin'))?.equals(old), 'the previous object is unchanged');
      // SPEC §7: the aborted upload of a NEW key stays resumable (on S3 its whole parts, recorded, not
      // leaked); the aborted overwrite of old.bin leaves nothing. DELE removes the resumable one.
      if (backend === 's3') {
        t.equal(await gw.probe.openUploads(b), 1, 'only the resumable upload of new.bin is left');
        t.same(await gw.probe.keys(b, '.s3ftpd-resume/'), ['.s3ftpd-resume/new.bin'], 'recorded as resumable; nothing for old.bin');
        t.equal((await ftp.send(`SIZE /${b}/new.bin`)).text, `213 ${8 * 1024 * 1024}`, 'SIZE: its one whole part (default --part-size 8MiB)');
      } else {
        t.match((await ftp.send(`SIZE /${b}/new.bin`)).text, /^213 [1-9]\d*$/, 'SIZE: the bytes kept of new.bin');
      }
      t.equal((await ftp.send(`DELE /${b}/new.bin`)).code, 250, 'DELE removes the resumable upload');
      t.equal((await ftp.send(`SIZE /${b}/new.bin`)).code, 550, 'then new.bin is gone');
      t.same((await gw.probe.keys(b)).filter((k) => k.includes('.s3ftpd-')), [], 'no record or partial file left');
      t.ok(await eventually(async () => (await gw.probe.openUploads(b)) === 0), 'no multipart upload left');
      t.ok(!(await eventually(async () => (await gw.probe.openUploads(b)) > 0, 1500)), 'and none appears later');
      t.equal(await stor(ftp, `/${b}/after.bin`, 'ok'), 226, 'the session goes on');
    });

    await t.test('QUIT 221 closes; QUIT during a transfer lets it finish first', async (t) => {
      const idle = await session(t, gw);
      const bye = await idle.send('QUIT');
      t.equal(bye.code, 221);
      t.equal((await idle.read(5000)).code, 0, 'the connection closes');
      t.ok(idle.closed);

      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'quit');
      const body = randomBytes(16 * 1024 * 1024);
      await gw.probe.put(b, 'q.bin', body);
      const running = await openTransfer(ftp, `RETR /${b}/q.bin`, { read: false });
      t.equal(running.first.code, 150);
      ftp.writeRaw('QUIT\r\n');
      await sleep(500);
      const chunks: Buffer[] = [];
      running.data.on('data', (c: Buffer) => chunks.push(c));
      await running.received;
      t.ok(Buffer.concat(chunks).equals(body), 'all bytes arrived');
      t.equal((await ftp.read()).code, 226, 'the transfer completes first');
      t.equal((await ftp.read()).code, 221, 'then QUIT');
      t.equal((await ftp.read(5000)).code, 0, 'the connection closes');
    });
  });
}
