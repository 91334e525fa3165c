// SPEC §4, file rows: SIZE, MDTM, DELE, RNFR/RNTO, REST, RETR, STOR, APPE, ALLO, TYPE, MODE, STRU.
// Every reply code is asserted through RawFtp; every outcome is checked in the store itself.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { backends, type Gateway } from '../helpers/gateway.ts';
import { gatewayFor, newBucket, parseTimeval, session, stor } from '../helpers/ftp-steps.ts';

/** Keys that are objects, not directory markers (the embedded store lists folders as `dir/`). */
async function fileKeys(gw: Gateway, name: string, prefix = ''): Promise<string[]> {
  return (await gw.probe.keys(name, prefix)).filter((k) => !k.endsWith('/'));
}

for (const backend of backends()) {
  t.test(`file commands on ${backend}`, async (t) => {
    const gw = await gatewayFor(t, backend);

    await t.test('SIZE: 213 bytes; 550 missing or a directory', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'size');
      await gw.probe.put(b, 'dir/f.bin', randomBytes(1234));
      await gw.probe.put(b, 'empty.txt', '');
      t.same((await ftp.send(`SIZE /${b}/dir/f.bin`)).lines, ['213 1234']);
      t.same((await ftp.send(`SIZE /${b}/empty.txt`)).lines, ['213 0']);
      t.equal((await ftp.send(`CWD /${b}/dir`)).code, 250);
      t.same((await ftp.send('SIZE f.bin')).lines, ['213 1234'], 'relative to the working directory');
      t.equal((await ftp.send(`SIZE /${b}/missing.bin`)).code, 550, 'missing file');
      t.equal((await ftp.send(`SIZE /${b}/dir`)).code, 550, 'a directory');
      t.equal((await ftp.send(`SIZE /${b}`)).code, 550, 'a bucket');
      t.equal((await ftp.send('SIZE /')).code, 550, 'the root');
      t.equal((await ftp.send(`SIZE /no-such-bucket-${b}/x`)).code, 550, 'missing bucket');
    });

    await t.test('MDTM: 213 YYYYMMDDHHMMSS in UTC; 550 missing', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'mdtm');
      const before = Date.now();
      await gw.probe.put(b, 'f.txt', 'hello');
      const after = Date.now();
      const reply = await ftp.send(`MDTM /${b}/f.txt`);
      t.equal(reply.code, 213);
      const match = /^213 (\d{14})$/.exec(reply.lines[0] ?? '');
      t.ok(match, `14-digit timeval: ${reply.text}`);
      const when = parseTimeval(match?.[1] ?? '')?.getTime() ?? 0;
      // Whole seconds in UTC: the stamp lies within the upload, truncated, with a little clock slack.
      t.ok(when >= before - 3000 && when <= after + 3000, `MDTM ${match?.[1]} is the upload time in UTC`);
      t.equal((await ftp.send(`MDTM /${b}/missing.txt`)).code, 550, 'missing file');
      await gw.probe.put(b, 'd/x.txt', 'x');
      t.equal((await ftp.send(`MDTM /${b}/d`)).code, 550, 'a directory');
    });

    await t.test('DELE: 250 and the object is gone; 550 missing or a directory', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'dele');
      await gw.probe.put(b, 'a.txt', 'a');
      await gw.probe.put(b, 'd/keep.txt', 'k');
      t.equal((await ftp.send(`DELE /${b}/a.txt`)).code, 250);
      t.equal(await gw.probe.get(b, 'a.txt'), undefined, 'object deleted');
      t.equal((await ftp.send(`DELE /${b}/a.txt`)).code, 550, 'already gone');
      t.equal((await ftp.send(`DELE /${b}/d`)).code, 550, 'a directory');
      t.same(await fileKeys(gw, b), ['d/keep.txt'], 'the directory and its content stay');
    });

    await t.test('RNFR/RNTO a file: 350/250, copy then delete; names with spaces, UTF-8, + and %', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'rnfile');
      const body = randomBytes(4096);
      await gw.probe.put(b, 'ünï 日本.txt', body);
      t.equal((await ftp.send(`RNFR /${b}/ünï 日本.txt`)).code, 350);
      t.equal((await ftp.send(`RNTO /${b}/sub/re named+50%.txt`)).code, 250);
      t.equal(await gw.probe.get(b, 'ünï 日本.txt'), undefined, 'old name gone');
      t.ok((await gw.probe.get(b, 'sub/re named+50%.txt'))?.equals(body), 'bytes under the new name');
      t.equal((await ftp.send(`CWD /${b}/sub`)).code, 250);
      t.equal((await ftp.send('RNFR re named+50%.txt')).code, 350, 'relative source');
      t.equal((await ftp.send('RNTO ../back.txt')).code, 250, 'relative target');
      t.same(await fileKeys(gw, b), ['back.txt']);
      t.ok((await gw.probe.get(b, 'back.txt'))?.equals(body));
    });

    await t.test('RNFR/RNTO a whole directory moves every key under the prefix', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'rndir');
      for (const dir of ['src', 'src/sub', 'src/empty']) t.equal((await ftp.send(`MKD /${b}/${dir}`)).code, 257);
      t.equal(await stor(ftp, `/${b}/src/a.txt`, 'A'), 226);
      t.equal(await stor(ftp, `/${b}/src/sub/b.txt`, 'BB'), 226);
      await gw.probe.put(b, 'srcx.txt', 'not under the prefix');
      t.equal((await ftp.send(`RNFR /${b}/src`)).code, 350);
      t.equal((await ftp.send(`RNTO /${b}/dst`)).code, 250);
      t.same(
        await gw.probe.keys(b),
        ['dst/', 'dst/a.txt', 'dst/empty/', 'dst/sub/', 'dst/sub/b.txt', 'srcx.txt'],
        'every key and marker moved, the neighbour untouched',
      );
      t.equal((await gw.probe.get(b, 'dst/sub/b.txt'))?.toString(), 'BB');
      t.equal((await ftp.send(`CWD /${b}/src`)).code, 550, 'the old directory is gone');
    });

    await t.test('RNTO without RNFR 503; RNFR of a missing source 550', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'rnerr');
      await gw.probe.put(b, 'a.txt', 'a');
      t.equal((await ftp.send(`RNTO /${b}/b.txt`)).code, 503, 'no RNFR at all');
      t.equal((await ftp.send(`RNFR /${b}/missing.txt`)).code, 550, 'missing source');
      t.equal((await ftp.send(`RNTO /${b}/b.txt`)).code, 503, 'a refused RNFR leaves nothing to rename');
      t.equal((await ftp.send(`RNFR /${b}/a.txt`)).code, 350);
      t.equal((await ftp.send(`RNTO /${b}/b.txt`)).code, 250);
      t.equal((await ftp.send(`RNTO /${b}/c.txt`)).code, 503, 'RNFR is used up by one RNTO');
      t.same(await fileKeys(gw, b), ['b.txt']);
    });

    await t.test('REST: 350; 501 not a number; REST>0 before STOR/APPE 554', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'rest');
      for (const bad of ['abc', '-5', '1.5', '12x']) t.equal((await ftp.send(`REST ${bad}`)).code, 501, `REST ${bad}`);
      t.equal((await ftp.send('REST 100')).code, 350);
      const refused = await ftp.transfer(`STOR /${b}/s.bin`, { upload: Buffer.from('data') });
      t.equal(refused.first.code, 554, 'STOR after REST 100');
      t.equal(await gw.probe.get(b, 's.bin'), undefined, 'nothing stored');
      t.equal((await ftp.send('REST 7')).code, 350);
      t.equal((await ftp.transfer(`APPE /${b}/s.bin`, { upload: Buffer.from('data') })).first.code, 554, 'APPE after REST 7');
      t.equal(await gw.probe.get(b, 's.bin'), undefined, 'nothing appended');
      t.equal(await stor(ftp, `/${b}/s.bin`, 'fresh'), 226, 'the refused offset does not stick');
      t.equal((await ftp.send('REST 0')).code, 350);
      t.equal(await stor(ftp, `/${b}/s.bin`, 'zero'), 226, 'REST 0 then STOR is an ordinary upload');
      t.equal((await gw.probe.get(b, 's.bin'))?.toString(), 'zero');
    });

    await t.test('RETR: whole object, resumed from a REST offset; 550 missing or a directory', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'retr');
      const body = randomBytes(300_001);
      await gw.probe.put(b, 'f.bin', body);
      t.equal((await ftp.send('REST 250000')).code, 350);
      const tail = await ftp.transfer(`RETR /${b}/f.bin`);
      t.equal(tail.first.code, 150);
      t.equal(tail.final?.code, 226);
      t.ok(tail.data.equals(body.subarray(250_000)), `resumed at byte 250000 (${tail.data.length} bytes)`);
      const whole = await ftp.transfer(`RETR /${b}/f.bin`);
      t.equal(whole.final?.code, 226);
      t.ok(whole.data.equals(body), 'the offset applies to one RETR only');
      t.equal((await ftp.transfer(`RETR /${b}/missing.bin`)).first.code, 550, 'missing');
      await gw.probe.put(b, 'd/x', 'x');
      t.equal((await ftp.transfer(`RETR /${b}/d`)).first.code, 550, 'a directory');
      t.equal((await ftp.send('NOOP')).code, 200, 'the session goes on');
    });

    await t.test('STOR overwrites; empty files are stored', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'stor');
      const first = randomBytes(200_000);
      const second = randomBytes(1000);
      const up = await ftp.transfer(`STOR /${b}/o.bin`, { upload: first });
      t.equal(up.first.code, 150);
      t.equal(up.final?.code, 226);
      t.ok((await gw.probe.get(b, 'o.bin'))?.equals(first));
      t.equal(await stor(ftp, `/${b}/o.bin`, second), 226);
      t.ok((await gw.probe.get(b, 'o.bin'))?.equals(second), 'replaced by the shorter body');
      t.equal(await stor(ftp, `/${b}/empty`, ''), 226);
      t.equal((await gw.probe.get(b, 'empty'))?.length, 0, 'zero-byte object');
      t.equal(await gw.probe.openUploads(b), 0);
    });

    await t.test('APPE: 226 when new; 426 with the object unchanged when it exists', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'appe');
      const body = randomBytes(5000);
      const created = await ftp.transfer(`APPE /${b}/a.bin`, { upload: body });
      t.equal(created.first.code, 150);
      t.equal(created.final?.code, 226);
      t.ok((await gw.probe.get(b, 'a.bin'))?.equals(body), 'stored as by STOR');
      const refused = await ftp.transfer(`APPE /${b}/a.bin`, { upload: Buffer.from('more') });
      t.equal(refused.first.code, 426, 'S3 cannot append');
      t.ok((await gw.probe.get(b, 'a.bin'))?.equals(body), 'object unchanged');
      t.equal((await ftp.send('NOOP')).code, 200, 'the session goes on');
    });

    await t.test('ALLO 202; TYPE A/I (any) 200 and transfers stay binary; MODE S / STRU F 200, others 504', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'type');
      t.equal((await ftp.send('ALLO')).code, 202);
      t.equal((await ftp.send('ALLO 123456')).code, 202);
      for (const type of ['A', 'I', 'A N', 'L 8', 'E']) t.equal((await ftp.send(`TYPE ${type}`)).code, 200, `TYPE ${type}`);
      t.equal((await ftp.send('TYPE A')).code, 200);
      const text = Buffer.from('line one\nline two\r\nbare cr\r\x00\xff end\n', 'latin1');
      t.equal(await stor(ftp, `/${b}/t.txt`, text), 226);
      t.ok((await gw.probe.get(b, 't.txt'))?.equals(text), 'stored byte for byte under TYPE A');
      const down = await ftp.transfer(`RETR /${b}/t.txt`);
      t.ok(down.data.equals(text), 'retrieved byte for byte under TYPE A');
      t.equal((await ftp.send('MODE S')).code, 200);
      t.equal((await ftp.send('mode s')).code, 200);
      for (const mode of ['B', 'C', 'Z']) t.equal((await ftp.send(`MODE ${mode}`)).code, 504, `MODE ${mode}`);
      t.equal((await ftp.send('STRU F')).code, 200);
      for (const stru of ['R', 'P']) t.equal((await ftp.send(`STRU ${stru}`)).code, 504, `STRU ${stru}`);
    });
  });
}
